// The dashboard's figures stay live: fetched again (GET /dashboard/figures,
// the region's "refresh") when a case changes, at most once every two
// seconds however many changes arrive, and every 30 seconds anyway (the
// region's own trigger), as time passing breaches cases. live.mjs holds a
// refresh while the focus is inside the figures, or live updates are
// paused. A headline figure that changed is announced, politely, in the
// page's one live region ("Waste: 12 cases in the queue, 1 more"); nothing
// else is, and the focus never moves.

const region = document.getElementById('dashboard-figures')
const announcer = document.getElementById('announcer')
const gap = 2000
const settle = 250

function figures () {
  const out = new Map()
  for (const el of region.querySelectorAll('[data-figure][data-say]')) {
    out.set(el.dataset.figure, { n: Number(el.dataset.value), say: el.dataset.say })
  }
  return out
}

if (region) {
  let last = 0
  let timer = null
  let before = figures()

  // A case changed: refresh once the burst settles, and not sooner than
  // two seconds after the last refresh.
  document.addEventListener('sse:queue', () => {
    if (timer) return
    const wait = Math.max(settle, last + gap - Date.now())
    timer = window.setTimeout(() => {
      timer = null
      window.htmx.trigger(region, 'refresh')
    }, wait)
  })

  region.addEventListener('htmx:beforeRequest', (ev) => {
    if (ev.detail.elt === region) last = Date.now()
  })

  region.addEventListener('htmx:afterSwap', (ev) => {
    if (ev.detail.elt !== region) return
    const after = figures()
    const news = []
    for (const [key, now] of after) {
      const was = before.get(key)
      if (!was || was.n === now.n) continue
      const d = now.n - was.n
      news.push(now.say + ', ' + (d > 0 ? d + ' more' : -d + ' fewer'))
    }
    before = after
    if (news.length > 0 && announcer) {
      announcer.textContent = news.join('. ')
    }
  })
}
