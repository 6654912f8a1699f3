// The router: #/upload, #/gallery, #/image/<id>, #/analyze, #/stats, #/key (hash routes work
// under any stage path, with no server routes).
import { api, getKey, setKey } from "./api.js";
import { clear, errorBox, h } from "./dom.js";
import { renderUpload } from "./upload.js";
import { renderGallery } from "./gallery.js";
import { renderImage } from "./image.js";
import { renderAnalyze } from "./analyze.js";
import { renderStats } from "./stats.js";

const main = document.getElementById("main");
let cleanup = null;

function renderKey(root) {
  const input = h("input", {
    id: "api-key", type: "password", autocomplete: "off", spellcheck: "false",
    value: getKey(), required: true, "aria-describedby": "key-help",
  });
  const status = h("p", { id: "key-status", role: "status" });
  const form = h("form", { class: "card narrow", onsubmit: async (ev) => {
    ev.preventDefault();
    const value = input.value.trim();
    status.textContent = "Checking the key…";
    status.className = "";
    try {
      await api("images?limit=1", { key: value });
      setKey(value);
      status.textContent = "The key works and is saved in this browser.";
      location.hash = "#/gallery";
    } catch (err) {
      status.textContent = err.message;
      status.className = "error";
    }
  } },
  h("h1", {}, "API key"),
  h("p", { id: "key-help" },
    "Every request needs the service's API key (the x-api-key header). It is kept in this " +
    "browser's storage and sent only to this service. Locally, make local prints it; in AWS, " +
    "read it with aws apigateway get-api-key --include-value."),
  h("label", { for: "api-key" }, "Key"),
  input,
  h("div", { class: "row" },
    h("button", { type: "submit", id: "save-key" }, "Save key"),
    h("button", { type: "button", class: "secondary", onclick: () => {
      setKey("");
      input.value = "";
      status.textContent = "The key was removed from this browser.";
    } }, "Forget key")),
  status);
  root.append(form);
  input.focus();
}

const ROUTES = {
  upload: renderUpload,
  gallery: renderGallery,
  image: renderImage,
  analyze: renderAnalyze,
  stats: renderStats,
  key: renderKey,
};

async function route() {
  const [, name = "", ...rest] = location.hash.split("/");
  let view = ROUTES[name] ? name : getKey() ? "gallery" : "key";
  if (!getKey() && view !== "key") view = "key";
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  clear(main);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `imgsvc · ${view}`;
  try {
    cleanup = await ROUTES[view](main, rest.map(decodeURIComponent));
  } catch (err) {
    main.append(errorBox(err));
  }
  // A keyboard user continues from the new page, not from the link that was removed (or the
  // top of the document), unless the page focused a field itself.
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
}

// "#main" as a hash would be a route (the gallery): the skip link moves the focus instead.
document.querySelector(".skip").addEventListener("click", (ev) => {
  ev.preventDefault();
  main.focus();
});

window.addEventListener("hashchange", route);
route();
