// Starts GOV.UK Frontend's components (the error summary takes focus, the
// skip link moves it). The pages work without it.
import { initAll } from '/assets/lib/govuk-frontend.min.js'

document.body.classList.add('govuk-frontend-supported')
initAll()
