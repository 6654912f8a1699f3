// Upload: many files straight to S3 with their presigned POSTs, a progress bar each, then the
// state the service reports (processing, done, duplicate, rejected with the reason).
import { api, contentUrl } from "./api.js";
import { bytes, h } from "./dom.js";

const TYPES = {
  jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", gif: "image/gif",
  webp: "image/webp", tif: "image/tiff", tiff: "image/tiff", bmp: "image/bmp",
  heic: "image/heic", heif: "image/heif", avif: "image/avif",
};
const ACCEPTED = new Set(Object.values(TYPES));
// Fallbacks only: the service publishes its limits at GET /status (a deployment may lower them).
const PER_REQUEST = 50; // POST /uploads and /uploads/{id}/files take 50 files at most
const PER_SESSION = 1000; // an upload session holds 1,000 files at most
const PARALLEL = 3;
const POLL_MS = 1000;

// A file dropped beside the zone would make the browser leave the app to show it.
for (const type of ["dragover", "drop"]) {
  window.addEventListener(type, (ev) => {
    if (ev.dataTransfer && [...ev.dataTransfer.types].includes("Files")) ev.preventDefault();
  });
}

// Module state: uploads go on while the user looks at other pages.
const list = h("ol", { class: "uploads", id: "upload-list", "aria-live": "polite" });
const summary = h("p", { id: "upload-summary", role: "status" });
const jobs = [];
let running = false;

function contentType(file) {
  if (ACCEPTED.has(file.type)) return file.type;
  const ext = (file.name.split(".").pop() || "").toLowerCase();
  return TYPES[ext] || "";
}

function uniqueName(name, used) {
  const clean = (name || "photo").replace(/[/\\]/g, "_");
  let candidate = clean;
  for (let n = 2; used.has(candidate); n += 1) {
    const dot = clean.lastIndexOf(".");
    candidate = dot > 0 ? `${clean.slice(0, dot)} (${n})${clean.slice(dot)}` : `${clean} (${n})`;
  }
  used.add(candidate);
  return candidate;
}

function makeJob(file, name) {
  const bar = h("progress", { max: 100, value: 0, "aria-label": `Upload of ${name}` });
  const state = h("span", { class: "state" }, "waiting");
  const result = h("span", { class: "result" });
  const row = h("li", { class: "upload", "data-state": "waiting" },
    h("span", { class: "fname" }, name), h("span", { class: "fsize" }, bytes(file.size)),
    bar, state, result);
  list.append(row);
  return { file, name, type: contentType(file), bar, state, result, row, status: "waiting" };
}

function setState(job, status, text) {
  job.status = status;
  job.row.dataset.state = status;
  job.state.textContent = text || status;
}

function postToS3(job, post) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(post.fields)) form.append(k, v);
    form.append("file", job.file); // S3 wants the file last
    const xhr = new XMLHttpRequest();
    xhr.open("POST", post.url);
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) job.bar.value = Math.round((ev.loaded / ev.total) * 100);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else {
        const m = /<Message>([^<]*)<\/Message>/.exec(xhr.responseText || "");
        reject(new Error(`storage refused the file (HTTP ${xhr.status})${m ? ": " + m[1] : ""}`));
      }
    });
    xhr.addEventListener("error", () => reject(new Error("the upload to storage failed (network)")));
    xhr.send(form);
  });
}

async function runPool(items, worker) {
  let next = 0;
  async function lane() {
    while (next < items.length) {
      const item = items[next];
      next += 1;
      await worker(item);
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, lane));
}

function showFinal(job, file) {
  if (file.status === "done") {
    const link = h("a", { href: `#/image/${file.image_id}` },
      h("img", { class: "mini", src: contentUrl(file.image_id), alt: "", loading: "lazy" }),
      file.duplicate ? "duplicate of an existing image" : "open");
    setState(job, file.duplicate ? "duplicate" : "done", file.duplicate ? "duplicate" : "done");
    job.result.replaceChildren(link);
  } else if (file.status === "rejected") {
    setState(job, "rejected", "rejected");
    job.result.textContent = file.error || "rejected by the service";
  }
}

function poll(uploadId, waiting) {
  return new Promise((resolve) => {
    const tick = async () => {
      try {
        const status = await api(`uploads/${uploadId}`);
        for (const job of [...waiting]) {
          const file = status.files[job.name];
          if (file && file.status !== "pending") {
            showFinal(job, file);
            waiting.delete(job);
          }
        }
      } catch (err) {
        for (const job of waiting) job.result.textContent = `status unknown: ${err.message}`;
      }
      updateSummary();
      if (waiting.size) setTimeout(tick, POLL_MS);
      else resolve();
    };
    setTimeout(tick, POLL_MS / 2);
  });
}

let limitsAsked = null;

/** Files per request and per session, from GET /status (no key needed), else the fallbacks. */
export function uploadLimits() {
  if (!limitsAsked) {
    limitsAsked = fetch("status").then((res) => (res.ok ? res.json() : {})).then((body) => {
      const l = (body && body.limits) || {};
      const ok = (n) => Number.isInteger(n) && n > 0;
      return {
        perRequest: ok(l.max_files_per_request) ? l.max_files_per_request : PER_REQUEST,
        perSession: ok(l.max_files_per_session) ? l.max_files_per_session : PER_SESSION,
      };
    }).catch(() => {
      limitsAsked = null; // ask again next time
      return { perRequest: PER_REQUEST, perSession: PER_SESSION };
    });
  }
  return limitsAsked;
}

async function uploadSession(batch, perRequest) {
  let uploadId = null;
  const waiting = new Set();
  const polls = [];
  for (let i = 0; i < batch.length; i += perRequest) {
    const chunk = batch.slice(i, i + perRequest);
    const files = chunk.map((j) => ({ filename: j.name, content_type: j.type, size: j.file.size }));
    let answer;
    try {
      answer = uploadId
        ? await api(`uploads/${uploadId}/files`, { method: "POST", body: { files } })
        : await api("uploads", { method: "POST", body: { expiry: 3600, files } });
    } catch (err) {
      for (const job of chunk) {
        setState(job, "rejected", "not started");
        job.result.textContent = err.message;
      }
      continue;
    }
    uploadId = answer.upload_id;
    const posts = new Map(answer.files.map((f) => [f.filename, f]));
    await runPool(chunk, async (job) => {
      setState(job, "uploading", "uploading");
      try {
        await postToS3(job, posts.get(job.name));
        job.bar.value = 100;
        setState(job, "processing", "processing");
        waiting.add(job);
      } catch (err) {
        setState(job, "rejected", "failed");
        job.result.textContent = err.message;
      }
      updateSummary();
    });
    if (waiting.size) polls.push(poll(uploadId, waiting));
  }
  await Promise.all(polls);
}

function updateSummary() {
  const counts = {};
  for (const job of jobs) counts[job.status] = (counts[job.status] || 0) + 1;
  const order = ["waiting", "uploading", "processing", "done", "duplicate", "rejected"];
  const parts = order.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`);
  summary.textContent = parts.length ? `${jobs.length} files: ${parts.join(", ")}` : "";
}

export function addFiles(fileList) {
  const used = new Set();
  const fresh = [];
  for (const file of fileList) {
    const job = makeJob(file, uniqueName(file.name, used));
    jobs.push(job);
    if (!job.type) {
      setState(job, "rejected", "rejected");
      job.result.textContent = "not an accepted image type (JPEG, PNG, GIF, WebP, TIFF, BMP, HEIC/HEIF, AVIF)";
    } else fresh.push(job);
  }
  updateSummary();
  // Each session gets its own names, so a later batch may reuse a name. A request never holds
  // more than a session may (a deployment can set the session limit below the request limit).
  const work = async () => {
    const { perRequest, perSession } = await uploadLimits();
    const size = Math.min(perRequest, perSession);
    for (let i = 0; i < fresh.length; i += perSession) {
      await uploadSession(fresh.slice(i, i + perSession), size);
    }
  };
  const queued = (addFiles.queue || Promise.resolve()).then(work);
  addFiles.queue = queued.catch(() => {});
  running = true;
  queued.finally(() => { running = false; updateSummary(); });
}

export function renderUpload(root) {
  const picker = h("input", {
    type: "file", id: "file-input", multiple: true, accept: "image/*,.heic,.heif,.avif", class: "visually-hidden",
    onchange: () => { addFiles([...picker.files]); picker.value = ""; },
  });
  const camera = h("input", {
    type: "file", id: "camera-input", accept: "image/*,.heic,.heif", capture: "environment",
    class: "visually-hidden",
    onchange: () => { addFiles([...camera.files]); camera.value = ""; },
  });
  const zone = h("div", { class: "dropzone", id: "dropzone" },
    h("p", {}, "Drop photos here, or"),
    h("div", { class: "row" },
      h("button", { type: "button", id: "choose", onclick: () => picker.click() }, "Choose files"),
      h("button", { type: "button", class: "secondary", onclick: () => camera.click() },
        "Take a photo")),
    h("p", { class: "hint" },
      "JPEG, PNG, GIF, WebP, TIFF, BMP, HEIC/HEIF or AVIF. Each file goes straight to storage; " +
      "large batches are split to fit the service's limits (files per request and per session)."),
    picker, camera);
  // Cancelling dragenter and dragover is what makes the zone a drop target.
  const over = (ev) => {
    if (![...ev.dataTransfer.types].includes("Files")) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "copy";
    zone.classList.add("over");
  };
  zone.addEventListener("dragenter", over);
  zone.addEventListener("dragover", over);
  zone.addEventListener("dragleave", (ev) => {
    // Moving onto a child (a button) also fires dragleave: only leaving the zone counts.
    if (!zone.contains(ev.relatedTarget)) zone.classList.remove("over");
  });
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    addFiles([...ev.dataTransfer.files]);
  });
  const clearDone = h("button", { type: "button", class: "secondary", onclick: () => {
    for (let i = jobs.length - 1; i >= 0; i -= 1) {
      if (!["waiting", "uploading", "processing"].includes(jobs[i].status)) {
        jobs[i].row.remove();
        jobs.splice(i, 1);
      }
    }
    updateSummary();
  } }, "Clear finished");
  root.append(h("h1", {}, "Upload"), zone, h("div", { class: "row" }, summary, clearDone), list);
  return () => {};
}

export function uploading() {
  return running;
}
