// Image page: the picture, all metadata, download, ASCII art, similar images, compare, crop.
import { api, contentUrl, renditionUrl, thumbUrl } from "./api.js";
import { bytes, confirmDialog, errorBox, h, toast } from "./dom.js";
import { camera } from "./gallery.js";

const FIELDS = [
  ["name", "Name"], ["desc", "Description"], ["format", "Format"], ["mode", "Mode"],
  ["dimensions", "Dimensions"], ["displayed", "Displayed size"], ["bytes", "Size"],
  ["camera", "Camera"], ["taken_at", "Taken"], ["orientation", "EXIF orientation"],
  ["created_at", "Added"], ["sha256", "SHA-256"], ["sha1", "SHA-1"], ["phash", "Perceptual hash"],
  ["source_url", "Source URL"], ["derived_from", "Cropped from"],
];

function metadata(image) {
  const values = {
    ...image,
    dimensions: `${image.width} × ${image.height}`,
    displayed: `${image.display_width} × ${image.display_height}`,
    bytes: `${bytes(image.bytes)} (${image.bytes} bytes)`,
    camera: camera(image),
  };
  const dl = h("dl", { class: "meta-list", id: "metadata" });
  for (const [key, label] of FIELDS) {
    const v = values[key];
    if (v === null || v === undefined || v === "") continue;
    const dd = key === "derived_from"
      ? h("dd", {}, h("a", { href: `#/image/${v}` }, v.slice(0, 16) + "…"))
      : h("dd", { class: key.startsWith("sha") || key === "phash" ? "mono" : "" }, String(v));
    dl.append(h("dt", {}, label), dd);
  }
  return dl;
}

// Crop: drag a rectangle on the picture as displayed, or with the keyboard (the picture is
// focusable: arrows move the rectangle, Shift+arrows resize it), or type the box; the box is
// sent in the image's displayed pixels (after EXIF orientation), which is what the browser shows.
function cropTool(image, picture, frame) {
  const rect = h("div", { class: "crop-rect", hidden: true });
  frame.append(rect);
  const inputs = {};
  const fields = ["left", "top", "right", "bottom"].map((name) => {
    const max = name === "left" || name === "right" ? image.display_width : image.display_height;
    inputs[name] = h("input", { type: "number", id: `crop-${name}`, min: 0, max, step: 1, inputmode: "numeric" });
    return h("label", {}, name, inputs[name]);
  });
  const out = h("div", { id: "crop-result", role: "status" });

  function showBox(box) {
    // In percent of the picture: the rectangle stays put when the picture is resized.
    const w = image.display_width;
    const ht = image.display_height;
    rect.hidden = false;
    rect.style.left = `${(box.left / w) * 100}%`;
    rect.style.top = `${(box.top / ht) * 100}%`;
    rect.style.width = `${((box.right - box.left) / w) * 100}%`;
    rect.style.height = `${((box.bottom - box.top) / ht) * 100}%`;
    for (const k of Object.keys(inputs)) inputs[k].value = box[k];
  }

  let start = null;
  const clamp = (v, max) => Math.max(0, Math.min(max, v));
  const point = (ev) => {
    const r = picture.getBoundingClientRect();
    return [clamp(ev.clientX - r.left, r.width), clamp(ev.clientY - r.top, r.height)];
  };
  // Displayed CSS pixels to the image's pixels (after orientation, as the browser shows it).
  const boxFrom = (a, b) => {
    const sx = image.display_width / picture.clientWidth;
    const sy = image.display_height / picture.clientHeight;
    const x = (v) => clamp(Math.round(v * sx), image.display_width);
    const y = (v) => clamp(Math.round(v * sy), image.display_height);
    return {
      left: x(Math.min(a[0], b[0])), top: y(Math.min(a[1], b[1])),
      right: x(Math.max(a[0], b[0])), bottom: y(Math.max(a[1], b[1])),
    };
  };
  frame.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    ev.preventDefault();
    start = point(ev);
    frame.setPointerCapture(ev.pointerId);
  });
  frame.addEventListener("pointermove", (ev) => {
    if (start) showBox(boxFrom(start, point(ev)));
  });
  frame.addEventListener("pointerup", (ev) => {
    if (!start) return;
    showBox(boxFrom(start, point(ev)));
    start = null;
  });
  const typed = () => Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, Number(el.value)]));
  const usable = (box) => box.right > box.left && box.bottom > box.top;
  for (const input of Object.values(inputs)) {
    input.addEventListener("input", () => {
      const box = typed();
      if (usable(box)) showBox(box);
    });
  }
  // The keyboard way: the first arrow puts a rectangle of half the picture in the middle.
  const KEYS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  frame.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      button.click();
      return;
    }
    if (!KEYS[ev.key]) return;
    ev.preventDefault(); // no page scrolling
    const w = image.display_width;
    const ht = image.display_height;
    let box = typed();
    if (!usable(box)) {
      box = { left: Math.round(w / 4), top: Math.round(ht / 4), right: Math.round((3 * w) / 4), bottom: Math.round((3 * ht) / 4) };
      showBox(box);
      return;
    }
    const [kx, ky] = KEYS[ev.key];
    const dx = kx * Math.max(1, Math.round(w / 50));
    const dy = ky * Math.max(1, Math.round(ht / 50));
    if (ev.shiftKey) {
      box.right = Math.max(box.left + 1, Math.min(w, box.right + dx));
      box.bottom = Math.max(box.top + 1, Math.min(ht, box.bottom + dy));
    } else {
      const mx = Math.max(-box.left, Math.min(w - box.right, dx));
      const my = Math.max(-box.top, Math.min(ht - box.bottom, dy));
      box = { left: box.left + mx, top: box.top + my, right: box.right + mx, bottom: box.bottom + my };
    }
    showBox(box);
  });
  const button = h("button", { type: "button", id: "crop-button", onclick: async () => {
    const box = typed();
    if (!usable(box)) {
      out.replaceChildren(errorBox(new Error("Drag a rectangle on the picture first (or type the box).")));
      return;
    }
    out.textContent = "Cropping…";
    try {
      const made = await api(`images/${image.image_id}/crop`, { method: "POST", body: box });
      out.replaceChildren(
        h("p", {}, `New image: ${made.width} × ${made.height} ${made.format}. `,
          h("a", { href: `#/image/${made.image_id}`, id: "crop-link" }, "Open it")),
        h("img", { class: "preview", src: contentUrl(made.image_id), alt: "The cropped image" }));
    } catch (err) {
      out.replaceChildren(errorBox(err));
    }
  } }, "Crop");
  return h("section", { class: "card", "aria-labelledby": "crop-h" },
    h("h2", { id: "crop-h" }, "Crop"),
    h("p", { class: "hint", id: "crop-help" }, "Drag a rectangle on the picture, or type the box in " +
      "pixels of the displayed image. By keyboard: focus the picture, then the arrow keys place " +
      "and move the rectangle, Shift+arrows resize it, Enter crops."),
    h("div", { class: "row fields" }, fields), button, out);
}

function asciiTool(image) {
  const width = h("input", { type: "range", id: "ascii-width", min: 20, max: 200, step: 10, value: 80 });
  const shown = h("output", { for: "ascii-width" }, "80");
  const art = h("pre", { class: "ascii", id: "ascii-art", tabindex: 0, "aria-label": "ASCII art" });
  let timer = 0;
  async function render() {
    shown.textContent = width.value;
    try {
      const res = await api(`images/${image.image_id}/ascii?width=${width.value}`, { text: true });
      art.textContent = res.text;
      art.classList.toggle("wide", Number(width.value) > 100);
    } catch (err) {
      art.textContent = err.message;
    }
  }
  width.addEventListener("input", () => {
    shown.textContent = width.value;
    clearTimeout(timer);
    timer = setTimeout(render, 250);
  });
  const button = h("button", { type: "button", id: "ascii-button", onclick: render }, "Show ASCII art");
  return h("section", { class: "card", "aria-labelledby": "ascii-h" },
    h("h2", { id: "ascii-h" }, "ASCII art"),
    h("div", { class: "row" }, h("label", { for: "ascii-width" }, "Width"), width, shown,
      button), art);
}

function similarTool(image) {
  const list = h("ul", { class: "grid small", id: "similar-list" });
  const status = h("p", { role: "status" }, "Loading…");
  api(`images/${image.image_id}/similar`).then((answer) => {
    const others = answer.results.filter((r) => r.image_id !== image.image_id);
    status.textContent = others.length
      ? `${others.length} within distance ${answer.max_distance}, nearest first`
      : `No other image within distance ${answer.max_distance}.`;
    for (const r of others) {
      list.append(h("li", { class: "card" },
        h("a", { href: `#/image/${r.image_id}`, class: "thumb" },
          h("img", { src: thumbUrl(r), alt: r.name || r.image_id.slice(0, 12), loading: "lazy" })),
        h("span", {}, `distance ${r.distance}`)));
    }
  }, (err) => status.replaceChildren(errorBox(err)));
  return h("section", { class: "card", "aria-labelledby": "similar-h" },
    h("h2", { id: "similar-h" }, "Similar images"), status, list);
}

function compareTool(image) {
  const select = h("select", { id: "compare-with" }, h("option", { value: "" }, "Choose an image…"));
  const other = h("input", { id: "compare-id", placeholder: "or paste an image id", spellcheck: "false", autocomplete: "off" });
  const out = h("div", { id: "compare-result", role: "status" });
  api("images?limit=100").then((page) => {
    for (const im of page.images) {
      if (im.image_id === image.image_id) continue;
      select.append(h("option", { value: im.image_id }, `${im.name || im.image_id.slice(0, 12)} (${im.format} ${im.width}×${im.height})`));
    }
  }, (err) => out.replaceChildren(errorBox(err)));
  const button = h("button", { type: "button", id: "compare-button", onclick: async () => {
    const id = other.value.trim() || select.value;
    if (!id) {
      out.replaceChildren(errorBox(new Error("Choose an image to compare with.")));
      return;
    }
    out.textContent = "Comparing…";
    try {
      const d = await api(`images/${image.image_id}/diff/${encodeURIComponent(id)}`);
      out.replaceChildren(
        h("p", { class: d.similar ? "verdict similar" : "verdict different" },
          d.similar ? "Similar" : "Different",
          `: distance ${d.distance} of 64 bits (similar at ${d.threshold} or less)`),
        h("div", { class: "pair" },
          h("img", { src: contentUrl(image.image_id), alt: "This image" }),
          h("img", { src: contentUrl(id), alt: "The other image" })));
    } catch (err) {
      out.replaceChildren(errorBox(err));
    }
  } }, "Compare");
  return h("section", { class: "card", "aria-labelledby": "compare-h" },
    h("h2", { id: "compare-h" }, "Compare with another image"),
    h("div", { class: "row" }, h("label", { for: "compare-with", class: "visually-hidden" }, "Image"),
      select, h("label", { for: "compare-id", class: "visually-hidden" }, "Image id"), other, button),
    out);
}

export async function renderImage(root, [id]) {
  const image = await api(`images/${encodeURIComponent(id || "")}`);
  // A rendition as wide as the screen can show (in device pixels), not the original: a
  // 12 Mpx photo or a HEIC file would be slow or not shown at all.
  const cssWidth = Math.min(window.innerWidth, image.display_width);
  const picture = h("img", {
    id: "picture", src: renditionUrl(image.image_id, cssWidth * (window.devicePixelRatio || 1)),
    alt: image.name || "The image",
    width: image.display_width, height: image.display_height, draggable: "false",
  });
  const frame = h("div", { class: "crop-frame", id: "crop-frame", tabindex: 0, role: "group",
    "aria-label": "Crop selection", "aria-describedby": "crop-help" }, picture);
  const download = h("a", { href: contentUrl(image.image_id), class: "button", id: "download",
    download: "" }, "Download original");
  const del = h("button", { type: "button", class: "danger", id: "delete-image", onclick: async () => {
    if (!(await confirmDialog("Delete this image? This cannot be undone.",
      { yes: "Yes, delete", yesId: "confirm-delete-image" }))) return;
    try {
      await api(`images/${image.image_id}`, { method: "DELETE" });
      toast("Image deleted.");
      location.hash = "#/gallery";
    } catch (err) {
      toast(err.message);
    }
  } }, "Delete");
  root.append(
    h("div", { class: "toolbar" },
      h("h1", { id: "image-title" }, image.name || `Image ${image.image_id.slice(0, 12)}`),
      h("div", { class: "row" }, download, del)),
    h("div", { class: "image-layout" },
      h("div", { class: "picture-col" }, frame),
      h("section", { class: "card", "aria-label": "Metadata" }, metadata(image))),
    cropTool(image, picture, frame),
    compareTool(image),
    similarTool(image),
    asciiTool(image));
}
