// Keyboard shortcuts for the queue and case pages, and the help overlay
// that lists them (opened with "?" or the "Keyboard shortcuts" button).
//
// Single-key shortcuts act only when the focus is not in a form field,
// and can be turned off in the overlay (WCAG 2.2 SC 2.1.4); the choice is
// kept in this browser. Ctrl+Enter (or ⌘+Enter) in the reply or note box
// sends it, whatever the setting.

const setting = 'inbox.shortcuts'

function enabled () {
  try {
    return window.localStorage.getItem(setting) !== 'off'
  } catch {
    return true
  }
}

function remember (on) {
  try {
    window.localStorage.setItem(setting, on ? 'on' : 'off')
  } catch {
    // Storage refused (private window): the choice lasts for this page.
  }
}

// activate presses the control with id, when the page has it.
function activate (id) {
  const el = document.getElementById(id)
  if (!el || el.disabled) return false
  el.click()
  return true
}

// focusField moves to the field with id and brings it into view.
function focusField (id) {
  const el = document.getElementById(id)
  if (!el) return false
  el.scrollIntoView({ block: 'center' })
  el.focus()
  return true
}

const dialog = document.getElementById('shortcuts')

function openHelp () {
  if (!dialog || dialog.open) return false
  dialog.showModal()
  return true
}

// The single-key shortcuts; each says whether it did anything.
const keys = {
  n: () => activate('next-case'),
  r: () => focusField('reply'),
  a: () => focusField('note'),
  e: () => activate('resolve'),
  '?': openHelp
}

// typing says whether a key press belongs to what has the focus.
function typing (el) {
  if (!(el instanceof Element)) return false
  if (el.isContentEditable) return true
  const tag = el.tagName
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true
  if (tag === 'INPUT') {
    return !['button', 'submit', 'reset', 'checkbox', 'radio'].includes(el.type)
  }
  return false
}

document.addEventListener('keydown', (ev) => {
  if (ev.defaultPrevented || ev.isComposing) return

  // Ctrl+Enter sends the reply or note being written.
  if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey) && !ev.altKey) {
    const field = ev.target
    if (field instanceof HTMLTextAreaElement && (field.id === 'reply' || field.id === 'note') && field.form) {
      ev.preventDefault()
      const send = field.form.querySelector('button[type="submit"][data-send]') ||
        field.form.querySelector('button[type="submit"]')
      field.form.requestSubmit(send || undefined)
    }
    return
  }

  if (ev.ctrlKey || ev.metaKey || ev.altKey) return
  if (!enabled() || typing(ev.target) || (dialog && dialog.open)) return
  const act = keys[ev.key]
  if (act && act()) ev.preventDefault()
})

if (dialog) {
  // The overlay lists only what this page has.
  for (const row of dialog.querySelectorAll('[data-shortcut-for]')) {
    row.hidden = !row.dataset.shortcutFor.split(' ').some((id) => document.getElementById(id))
  }
  const toggle = dialog.querySelector('#shortcuts-enabled')
  if (toggle) {
    toggle.checked = enabled()
    toggle.addEventListener('change', () => remember(toggle.checked))
  }
  for (const opener of document.querySelectorAll('[data-open-shortcuts]')) {
    opener.hidden = false
    opener.addEventListener('click', openHelp)
  }
  for (const closer of dialog.querySelectorAll('[data-close-dialog]')) {
    closer.addEventListener('click', () => dialog.close())
  }
  // A click on the backdrop closes the overlay too.
  dialog.addEventListener('click', (ev) => {
    if (ev.target === dialog) dialog.close()
  })
}
