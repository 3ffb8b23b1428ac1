/**
 * Body parsing for the OAuth endpoints: forms only. Registered inside their encapsulated
 * scope, so JSON is not parsed there: any other content type reaches the route as NOT_A_FORM
 * and becomes a clean invalid_request instead of a framework error.
 */
import { parse } from 'node:querystring'
import type { FastifyInstance } from 'fastify'
import { NOT_A_FORM } from '../checks/form.ts'

/** Largest OAuth request body we read (JWT assertions included). */
export const FORM_BODY_LIMIT = 64 * 1024

export function acceptFormsOnly (app: FastifyInstance): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_request, body, done) => {
    // node:querystring returns a null-prototype object; repeated names become arrays.
    done(null, parse(body as string))
  })
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: FORM_BODY_LIMIT }, (_request, _body, done) => {
    done(null, NOT_A_FORM)
  })
}
