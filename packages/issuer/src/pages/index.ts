/**
 * Server-rendered pages of the issuer's browser flows: no script, no external assets, one
 * constant inline style sheet allowed by hash (`STYLE_CSP_SOURCE`).
 */
export { loginPage, type LoginPageOptions } from './login.ts'
export { consentPage, type ConsentPageOptions } from './consent.ts'
export { logoutConfirmPage, loggedOutPage, type LogoutConfirmPageOptions } from './logout.ts'
export { errorPage, type ErrorPageOptions } from './error.ts'
export { STYLE_CSP_SOURCE } from './style.ts'
