// Live updates: the queue's results, a case's timeline and the dashboard's
// figures are fetched again when the server says something changed (htmx,
// sse:queue and sse:case). Two things hold a refresh back until it cannot surprise:
//
//   - the focus inside the region (a link or button the adviser is on):
//     the region refreshes when the focus leaves it (WCAG 2.4.3);
//   - "Pause live updates", pressed: nothing refreshes until it is pressed
//     again, when what changed meanwhile is fetched (WCAG 2.2.2).

const regions = new Set(['queue-results', 'timeline', 'dashboard-figures'])
const held = new Set()
let paused = false

function refresh (el) {
  held.delete(el)
  delete el.dataset.held
  window.htmx.trigger(el, 'refresh')
}

document.body.addEventListener('htmx:beforeRequest', (ev) => {
  const el = ev.detail.elt
  if (!regions.has(el.id)) return
  if (paused || el.contains(document.activeElement)) {
    ev.preventDefault()
    held.add(el)
    el.dataset.held = 'true'
  }
})

document.addEventListener('focusout', (ev) => {
  if (paused) return
  for (const el of [...held]) {
    if (!el.contains(ev.relatedTarget)) refresh(el)
  }
})

const toggle = document.querySelector('[data-live-toggle]')
if (toggle) {
  toggle.hidden = false
  toggle.addEventListener('click', () => {
    paused = !paused
    toggle.setAttribute('aria-pressed', String(paused))
    if (!paused) {
      for (const el of [...held]) refresh(el)
    }
  })
}
