// Analyze: format, size and mode of an image by URL (header only), cache hit or miss; history.
import { api } from "./api.js";
import { errorBox, h } from "./dom.js";

export async function renderAnalyze(root) {
  const url = h("input", { id: "analyze-url", type: "url", required: true, placeholder: "https://example.com/photo.jpg", autocomplete: "url" });
  const out = h("div", { id: "analyze-result", role: "status" });
  const history = h("ul", { class: "history", id: "history" });
  const historyStatus = h("p", { role: "status" });

  async function loadHistory() {
    try {
      const answer = await api("history?limit=50");
      history.replaceChildren(...answer.cached_items.map((item) => h("li", {},
        h("button", { type: "button", class: "link", onclick: () => { url.value = item; url.focus(); } }, item))));
      historyStatus.textContent = answer.count ? `${answer.count} cached ${answer.count === 1 ? "analysis" : "analyses"}, newest first` : "No analyses cached yet.";
    } catch (err) {
      historyStatus.replaceChildren(errorBox(err));
    }
  }

  const form = h("form", { class: "card", onsubmit: async (ev) => {
    ev.preventDefault();
    out.textContent = "Analyzing…";
    try {
      const answer = await api("analyze", { method: "POST", body: { image_url: url.value.trim() } });
      const r = answer.result;
      out.replaceChildren(h("dl", { class: "meta-list" },
        h("dt", {}, "Format"), h("dd", { id: "analyze-format" }, r.format),
        h("dt", {}, "Size"), h("dd", {}, `${r.width} × ${r.height}`),
        h("dt", {}, "Mode"), h("dd", {}, r.mode),
        h("dt", {}, "Cache"), h("dd", { id: "analyze-cache" },
          answer.cache === "hit" ? "hit (answered from the cache)" : "miss (fetched now)")));
      loadHistory();
    } catch (err) {
      out.replaceChildren(errorBox(err));
    }
  } },
  h("label", { for: "analyze-url" }, "Image URL"),
  h("div", { class: "row" }, url, h("button", { type: "submit", id: "analyze-button" }, "Analyze")),
  h("p", { class: "hint" }, "Only the image's header is read. Results are cached for an hour."),
  out);
  root.append(h("h1", {}, "Analyze"), form,
    h("section", { class: "card" }, h("h2", {}, "History"), historyStatus, history));
  await loadHistory();
}
