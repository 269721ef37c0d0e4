// queuectl dashboard: keeps the marked parts of a page current and asks before actions that
// cannot be undone. No framework and no build step; compiled into the binary.
//
// An element with data-refresh="URL" is replaced by the HTML fetched from URL every
// data-every milliseconds (the server may change the pace with an X-Refresh-Every header).
// The server escapes every job-provided string in that HTML, as in the page itself.
(() => {
  "use strict";

  const refresh = (el) => {
    let every = Number(el.dataset.every) || 2000;
    let last = null;
    const tick = async () => {
      if (!document.hidden) {
        try {
          const res = await fetch(el.dataset.refresh, {
            credentials: "same-origin",
            headers: { Accept: "text/html" },
          });
          if (res.ok) {
            const html = await res.text();
            if (html !== last) {
              el.innerHTML = html;
              last = html;
            }
            const next = Number(res.headers.get("X-Refresh-Every"));
            if (next > 0) every = next;
            el.removeAttribute("data-stale");
          } else {
            el.setAttribute("data-stale", String(res.status));
          }
        } catch (_) {
          // The dashboard stopped or the network dropped: keep the last view, marked stale.
          el.setAttribute("data-stale", "unreachable");
        }
      }
      setTimeout(tick, every);
    };
    // A part that is still a placeholder loads at once; the others were just rendered.
    setTimeout(tick, el.querySelector("[data-loading]") ? 0 : every);
  };

  document.querySelectorAll("[data-refresh]").forEach(refresh);

  document.addEventListener("submit", (event) => {
    const question = event.target.dataset && event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
