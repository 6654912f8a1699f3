// Building DOM without HTML strings: user and file text only ever becomes text nodes.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, err && err.message ? err.message : String(err));
}

let toastTimer = 0;
export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 4000);
}

/** Ask before something that cannot be undone. A modal <dialog> makes the rest of the page
 * inert; Tab and Shift+Tab cycle inside it, Escape cancels, and focus returns to the control
 * that opened it. Resolves true for yes. */
export function confirmDialog(text, { yes = "Delete", yesId, opener } = {}) {
  const back = opener || document.activeElement;
  return new Promise((resolve) => {
    const yesButton = h("button", { type: "button", class: "danger", id: yesId, value: "yes" }, yes);
    const noButton = h("button", { type: "button", class: "secondary", value: "no", autofocus: true }, "Cancel");
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-text" },
      h("p", { id: "confirm-text" }, text), h("div", { class: "row" }, yesButton, noButton));
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      if (back && back.isConnected) back.focus();
      resolve(answer);
    };
    yesButton.addEventListener("click", () => close(true));
    noButton.addEventListener("click", () => close(false));
    dialog.addEventListener("cancel", (ev) => { ev.preventDefault(); close(false); });
    dialog.addEventListener("keydown", (ev) => {
      if (ev.key !== "Tab") return;
      // Without this, Tab from the last button leaves the page for the browser's own UI.
      const stops = [yesButton, noButton];
      const i = stops.indexOf(document.activeElement);
      ev.preventDefault();
      stops[(i + (ev.shiftKey ? stops.length - 1 : 1) + stops.length) % stops.length].focus();
    });
    document.body.append(dialog);
    dialog.showModal();
    noButton.focus(); // the harmless choice first
  });
}
