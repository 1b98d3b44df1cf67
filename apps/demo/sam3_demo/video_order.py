"""The video tab's events in the order the page sent them, and no click lost to a loading picture.

Order. Frame changes (the slider's input and release events, each keeping only its last pending
call), clicks and pauses of the tracked video are separate Gradio events: the page sends them in the
user's order, but the server may serve them in another (they wait for the tab's lock on separate
threads, and a frame change held back by `always_last` is sent after a click made later). A frame
change served after a click would show an older frame than the slider's, and the next click would go
to a frame other than the one shown. So the page stamps each such event with a counter (`STAMP_JS`,
into a hidden number input), and the server serves a frame change only when nothing sent after it
was served already (`fresh`); a click sent before a newer frame change was served is still recorded
on its frame, and the picture stays on the newer frame.

Loading pictures. Each frame change replaces the picture, and Gradio drops a click on a picture that
has not loaded yet (it maps the click through the picture's natural size, 0 until then). `HEAD`
holds such a click back and sends it again, at the same place, once the picture has loaded; the
Point and Concept tabs' pictures (replaced after each click) get the same."""

from __future__ import annotations

import math
from typing import Any

SEQ_KEY = "seq"  # the tab state's key: the newest stamp served

# A JavaScript expression: the page's event counter, one more each time it is evaluated.
NEXT_STAMP = "(window.sam3VideoSeq = (window.sam3VideoSeq || 0) + 1)"
# `js=` of an event whose last input is the hidden stamp.
STAMP_JS = f"(...inputs) => {{ inputs[inputs.length - 1] = {NEXT_STAMP}; return inputs; }}"

CLICKABLE = ("#video-frame-view", "#point-image", "#concept-image")  # the pictures one clicks on

# launch(head=...): a click on a clickable picture while it loads is replayed once it has loaded
# (for up to 20 s; the capture listener runs before Gradio's own).
HEAD = """<script>
document.addEventListener("click", (event) => {
  const img = event.target;
  const holder = img instanceof HTMLImageElement && img.closest("SELECTORS");
  if (!holder) return;
  if (img.complete && img.naturalWidth > 0) return;
  event.stopImmediatePropagation();
  event.preventDefault();
  const box = img.getBoundingClientRect();
  const fx = (event.clientX - box.left) / Math.max(box.width, 1);
  const fy = (event.clientY - box.top) / Math.max(box.height, 1);
  const until = performance.now() + 20000;
  const replay = () => {
    const shown = document.querySelector("#" + holder.id + " img");
    if (!shown || !shown.complete || shown.naturalWidth === 0) {
      if (performance.now() < until) requestAnimationFrame(replay);
      return;
    }
    const r = shown.getBoundingClientRect();
    shown.dispatchEvent(new MouseEvent("click", {bubbles: true, cancelable: true, view: window,
      clientX: r.left + r.width * fx, clientY: r.top + r.height * fy}));
  };
  requestAnimationFrame(replay);
}, true);
</script>""".replace("SELECTORS", ", ".join(CLICKABLE))


def fresh(st: dict[str, Any], stamp: Any) -> bool:
    """Whether an event stamped `stamp` was sent after every stamped event served so far for the
    tab state `st` (recording it as the newest when so). An event without a usable stamp (an API
    call, a page without the script) counts as fresh."""
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
        return True
    if stamp < st.get(SEQ_KEY, 0):
        return False
    st[SEQ_KEY] = stamp
    return True
