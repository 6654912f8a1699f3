// The API client: relative URLs only (the app is served under the stage path), the key from
// localStorage in the x-api-key header (never in a URL), every error turned into words.

const KEY_NAME = "imgsvc.apiKey";

export function getKey() {
  try {
    return localStorage.getItem(KEY_NAME) || "";
  } catch {
    return "";
  }
}

export function setKey(value) {
  if (value) localStorage.setItem(KEY_NAME, value);
  else localStorage.removeItem(KEY_NAME);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const STATUS_WORDS = {
  400: "The request was not accepted",
  403: "The API key was refused",
  404: "Not found",
  413: "Too large",
  415: "Unsupported type",
  422: "Not a usable image",
  429: "Too many requests: slow down and retry in a moment",
  500: "The service failed",
  502: "The service or the image's server failed",
  504: "The service took too long",
};

async function errorFrom(res) {
  let code = "http_" + res.status;
  let message = "";
  try {
    const body = await res.json();
    code = body.code || code;
    message = body.message || "";
  } catch {
    // not JSON: keep the status words
  }
  if (res.status === 403 && (code === "forbidden" || !message)) {
    return new ApiError(403, "forbidden",
      "The API key was refused: check it on the API key page (it is the x-api-key value).");
  }
  const words = STATUS_WORDS[res.status] || `HTTP ${res.status}`;
  return new ApiError(res.status, code, message ? `${words}: ${message}` : words);
}

/** Call the API. path is relative ("images?limit=20"); body is sent as JSON. */
export async function api(path, { method = "GET", body, text = false, key } = {}) {
  const apiKey = key ?? getKey();
  if (!apiKey) {
    throw new ApiError(0, "no_key", "No API key yet: enter it on the API key page.");
  }
  const headers = { "x-api-key": apiKey };
  const init = { method, headers };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "The service could not be reached: check the connection and retry.");
  }
  if (!res.ok) throw await errorFrom(res);
  if (text) return { text: await res.text(), headers: res.headers };
  return res.json();
}

export function contentUrl(id) {
  return `images/${encodeURIComponent(id)}/content`;
}

/** A stored rendition of the picture as displayed, `width` pixels wide (the service rounds
 * up to its ladder of widths and never past the picture's own width). */
export function renditionUrl(id, width, format = "webp") {
  const w = Math.max(1, Math.min(3840, Math.ceil(width)));
  return `images/${encodeURIComponent(id)}/rendition?width=${w}&format=${format}`;
}

/** The picture for a gallery card: the thumbnail when the service has one, else the original. */
export function thumbUrl(image) {
  return image.thumbnail_url || contentUrl(image.image_id);
}
