/**
 * OIDC Back-Channel Logout 1.0 delivery, for the issuer (to its clients and resource servers)
 * and the gateway (to the resource servers its routes register): POST the `logout_token`
 * form-encoded (2.5), with a timeout, retried after no answer or a 5xx.
 */

/** What happened to one receiver. `status` is null when no HTTP answer came. */
export interface Notification {
  uri: string
  ok: boolean
  status: number | null
}

export interface DeliveryOptions {
  /** Milliseconds per attempt. */
  timeout: number
  /** Extra attempts after a network failure, a timeout or a 5xx. */
  retries: number
}

async function postOnce (uri: string, logoutToken: string, timeout: number): Promise<number | null> {
  try {
    const res = await fetch(uri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: logoutToken }).toString(),
      signal: AbortSignal.timeout(timeout),
      redirect: 'manual'
    })
    await res.body?.cancel()
    return res.status
  } catch {
    return null
  }
}

/**
 * Delivers one logout_token. 2.8: the receiver answers 200 (or 204) when it logged out and 400
 * when the token was not acceptable; a 4xx is final, a 5xx or no answer is retried.
 */
export async function deliverLogoutToken (uri: string, logoutToken: string, options: DeliveryOptions): Promise<Notification> {
  let status: number | null = null
  for (let attempt = 0; attempt <= options.retries; attempt++) {
    status = await postOnce(uri, logoutToken, options.timeout)
    if (status !== null && status < 500) break
  }
  return { uri, ok: status !== null && status >= 200 && status < 300, status }
}

/** Delivers every (uri, token) pair in parallel. */
export async function notifyAll (targets: Array<{ uri: string, logoutToken: string }>, options: DeliveryOptions): Promise<Notification[]> {
  return await Promise.all(targets.map(async (t) => await deliverLogoutToken(t.uri, t.logoutToken, options)))
}
