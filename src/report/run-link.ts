/**
 * The link to this run's log, from the runner's variables. They are text from outside like any other:
 * each is checked for its shape, and the link left out when one is not what GitHub sets.
 */

/** `https://github.com` or a GitHub Enterprise Server's origin (http allowed: some run without TLS). */
const SERVER = /^https?:\/\/[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::\d{1,5})?$/
/** `owner/repo`: GitHub's names are letters, digits, `-` (owners) and also `.` and `_` (repositories). */
const REPOSITORY = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/
const NUMBER = /^[1-9][0-9]{0,19}$/

/** The shape of a link runLink() makes: what a results file may hold (the merge checks it with this). */
export const RUN_LINK =
  /^https?:\/\/[A-Za-z0-9][A-Za-z0-9.-]{0,252}(?::\d{1,5})?\/[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100}\/actions\/runs\/[1-9][0-9]{0,19}(?:\/attempts\/[1-9][0-9]{0,19})?$/

/**
 * `${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}/actions/runs/${GITHUB_RUN_ID}`, with `/attempts/N` when
 * GITHUB_RUN_ATTEMPT is set; undefined outside Actions or when any of them has another shape.
 */
export function runLink(env: NodeJS.ProcessEnv): string | undefined {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repository, GITHUB_RUN_ID: id, GITHUB_RUN_ATTEMPT: attempt } = env
  if (!server || !SERVER.test(server) || !repository || !REPOSITORY.test(repository) || !id || !NUMBER.test(id)) return undefined
  if (attempt && !NUMBER.test(attempt)) return undefined
  return `${server}/${repository}/actions/runs/${id}${attempt ? `/attempts/${attempt}` : ''}`
}
