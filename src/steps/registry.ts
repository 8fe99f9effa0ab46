import type { Step } from '../plan/settings'
import type { StepContext, StepOutcome, StepRunner } from './context'
import { runLocal } from './local'
import { runReboot } from './reboot'
import { runScript } from './script'
import { runUpload } from './upload'

/** Every step kind's runner, by kind: a kind without one (or with the wrong one) does not compile. */
const RUNNERS: { [K in Step['kind']]: StepRunner<Extract<Step, { kind: K }>> } = {
  run: runScript,
  upload: runUpload,
  reboot: runReboot,
  local: runLocal
}

/** Runs `step` once with its kind's runner. Never rejects. */
export function dispatchStep(step: Step, ctx: StepContext): Promise<StepOutcome> {
  // TypeScript does not tie RUNNERS[step.kind] to step's own kind (a correlated union); RUNNERS' type does.
  return (RUNNERS[step.kind] as StepRunner<Step>)(step, ctx)
}
