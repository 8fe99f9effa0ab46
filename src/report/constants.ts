/** Output names, as declared in action.yml. */
export enum Outputs {
  Results = 'results',
  Succeeded = 'succeeded',
  Failed = 'failed',
  Captured = 'captured'
}

/** GitHub shows at most this many annotations of one kind per step. */
export const ANNOTATION_LIMIT = 10
