// Stats: uploads per UTC day for 30 days (bar chart), formats, top cameras, total.
import { api } from "./api.js";
import { h } from "./dom.js";

export async function renderStats(root) {
  const s = await api("stats");
  const days = Object.entries(s.uploads_per_day);
  const peak = Math.max(1, ...days.map(([, n]) => n));
  const monthDay = (d) => d.slice(5);
  const bars = days.map(([day, n]) => {
    const bar = h("span", { class: "bar" });
    bar.style.height = `${(n / peak) * 100}%`;
    return h("li", { title: `${day} (UTC): ${n}`, "aria-label": `${day}: ${n} uploads`, "data-day": day, "data-count": n },
      h("span", { class: "count" }, n ? String(n) : ""), bar, h("span", { class: "day" }, monthDay(day)));
  });
  const uploads = days.reduce((a, [, n]) => a + n, 0);
  const formats = Object.entries(s.formats);
  root.append(
    h("h1", {}, "Stats"),
    h("div", { class: "tiles" },
      h("div", { class: "tile" }, h("span", { class: "big", id: "total-images" }, String(s.total_images)), "images in the library"),
      h("div", { class: "tile" }, h("span", { class: "big", id: "uploads-30d" }, String(uploads)), "uploads in 30 days"),
      h("div", { class: "tile" }, h("span", { class: "big", id: "top-format" }, s.most_popular_format || "–"), "most popular format")),
    h("section", { class: "card" },
      h("h2", {}, "Uploads per day, last 30 days"),
      h("p", { class: "hint" }, "Days are UTC days (00:00 to 24:00 UTC), not your local time. Duplicates count; rejected files do not."),
      h("ol", { class: "chart", id: "chart" }, bars)),
    h("div", { class: "two" },
      h("section", { class: "card" }, h("h2", {}, "Formats"),
        formats.length
          ? h("table", { id: "formats" }, h("tbody", {}, formats.map(([f, n]) => h("tr", {}, h("th", {}, f), h("td", {}, String(n))))))
          : h("p", {}, "No images yet.")),
      h("section", { class: "card" }, h("h2", {}, "Top camera models"),
        s.top_camera_models.length
          ? h("ol", { id: "cameras" }, s.top_camera_models.map((c) => h("li", {}, c)))
          : h("p", {}, "No camera data yet."))));
}
