// Gallery: newest first, more pages as you scroll (cursor paging), select and delete, delete all.
import { api, thumbUrl } from "./api.js";
import { bytes, confirmDialog, errorBox, h, toast } from "./dom.js";

const PAGE = 24;

export function camera(image) {
  return image.camera || [image.make, image.model].filter(Boolean).join(" ") || "";
}

function card(image, selected, onToggle) {
  const id = image.image_id;
  const label = image.name || id.slice(0, 12);
  const box = h("input", {
    type: "checkbox", class: "pick", "aria-label": `Select ${label}`,
    onchange: () => onToggle(id, box.checked),
  });
  box.checked = selected.has(id);
  return h("li", { class: "card image-card", "data-id": id },
    h("a", { href: `#/image/${id}`, class: "thumb" },
      h("img", { src: thumbUrl(image), alt: label, loading: "lazy", decoding: "async" })),
    h("div", { class: "meta" },
      h("a", { href: `#/image/${id}`, class: "name" }, label),
      h("span", {}, [image.format, `${image.display_width ?? image.width}×${image.display_height ?? image.height}`, bytes(image.bytes)].join(" · ")),
      camera(image) ? h("span", { class: "camera" }, camera(image)) : null),
    box);
}

export async function renderGallery(root) {
  const selected = new Set();
  const grid = h("ul", { class: "grid", id: "gallery" });
  const status = h("p", { role: "status", id: "gallery-status" });
  const more = h("button", { type: "button", class: "secondary", id: "load-more" }, "Load more");
  const delSelected = h("button", { type: "button", id: "delete-selected", disabled: true },
    "Delete selected");
  let cursor = null;
  let done = false;
  let loading = false;
  let alive = true;

  const onToggle = (id, on) => {
    if (on) selected.add(id);
    else selected.delete(id);
    delSelected.disabled = selected.size === 0;
    delSelected.textContent = selected.size ? `Delete selected (${selected.size})` : "Delete selected";
  };

  async function loadMore() {
    if (loading || done || !alive) return;
    loading = true;
    more.disabled = true;
    status.textContent = "Loading…";
    try {
      const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const page = await api(`images?limit=${PAGE}${q}`);
      if (!alive) return;
      for (const image of page.images) grid.append(card(image, selected, onToggle));
      cursor = page.next_cursor;
      done = !cursor;
      const n = grid.children.length;
      status.textContent = n
        ? `${n} image${n === 1 ? "" : "s"}${done ? "" : " so far"}`
        : "No images yet: upload some on the Upload page.";
    } catch (err) {
      status.replaceChildren(errorBox(err));
    } finally {
      loading = false;
      more.disabled = false;
      more.hidden = done;
    }
    // The observer fires on changes only: keep going while the button is still in view.
    if (!done && alive && more.getBoundingClientRect().top < window.innerHeight + 400) {
      setTimeout(loadMore, 0);
    }
  }

  function reload() {
    grid.replaceChildren();
    selected.clear();
    onToggle("", false);
    cursor = null;
    done = false;
    return loadMore();
  }

  delSelected.addEventListener("click", async () => {
    const ids = [...selected];
    const what = ids.length === 1 ? "the selected image" : `the ${ids.length} selected images`;
    if (!(await confirmDialog(`Delete ${what}? This cannot be undone.`,
      { yes: "Yes, delete", yesId: "confirm-delete-selected" }))) return;
    let failed = 0;
    status.textContent = `Deleting ${ids.length}…`;
    for (const id of ids) {
      try {
        await api(`images/${id}`, { method: "DELETE" });
      } catch (err) {
        failed += 1;
        toast(err.message);
      }
    }
    toast(`Deleted ${ids.length - failed} image${ids.length - failed === 1 ? "" : "s"}.`);
    await reload();
  });

  const deleteAll = h("button", { type: "button", class: "danger", id: "delete-all", onclick: async () => {
    if (!(await confirmDialog("Delete every image in the library? This cannot be undone.",
      { yes: "Yes, delete everything", yesId: "confirm-delete-all" }))) return;
    let total = 0;
    try {
      // The service deletes a batch per call and says whether more remain.
      for (;;) {
        const answer = await api("images?confirm=true", { method: "DELETE" });
        total += answer.deleted;
        status.textContent = `Deleted ${total}…`;
        if (!answer.more) break;
      }
      toast(`Deleted ${total} image${total === 1 ? "" : "s"}.`);
    } catch (err) {
      toast(err.message);
    }
    await reload();
  } }, "Delete all…");

  more.addEventListener("click", loadMore);
  root.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Gallery"), h("div", { class: "row" }, delSelected, deleteAll)),
    grid, status, more);

  // Infinite scroll: load the next page when the button comes near the viewport.
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadMore();
  }, { rootMargin: "400px" });
  observer.observe(more);
  await loadMore();
  return () => {
    alive = false;
    observer.disconnect();
  };
}
