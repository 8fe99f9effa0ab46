/** The action's inputs, each read once from the runner, in the form its kind of input takes. */
import * as core from '@actions/core'
import { InputError } from './input-error'
import { Inputs } from './input-names'

/** Inputs that are masked; their values are never quoted in a message. */
export const SECRET_INPUTS = [Inputs.PrivateKey, Inputs.Passphrase, Inputs.Password, Inputs.ProxyPrivateKey, Inputs.SudoPassword] as const

/** Inputs taken byte for byte (scripts, YAML, env lines): no trimming. */
const VERBATIM_INPUTS: ReadonlySet<Inputs> = new Set([Inputs.Run, Inputs.Steps, Inputs.Env, Inputs.OnFailure, Inputs.Always])

const SECRETS: ReadonlySet<Inputs> = new Set(SECRET_INPUTS)

/**
 * One input's text. A secret exactly as given: a password or passphrase may begin or end with spaces;
 * only the line break a YAML block scalar (`password: |`) adds at the end goes. Others trimmed, as
 * the runner's getInput does, but for the verbatim ones.
 */
function readInput(name: Inputs): string {
  if (SECRETS.has(name)) return core.getInput(name, { trimWhitespace: false }).replace(/\r?\n$/, '')
  return core.getInput(name, { trimWhitespace: !VERBATIM_INPUTS.has(name) })
}

/** Every input's text, read once (Inputs names them all). */
export class InputValues {
  private readonly texts = new Map(Object.values(Inputs).map((name) => [name, readInput(name)]))

  /** The input's text ('' when not given). */
  text(name: Inputs): string {
    return this.texts.get(name) ?? ''
  }

  /** Whether the input has more than whitespace. */
  given(name: Inputs): boolean {
    return this.text(name).trim() !== ''
  }

  /** Converts one input, turning a failure into an InputError that names the input. */
  field<T>(name: Inputs, parse: (text: string) => T, fallback: string): T {
    const text = this.text(name) || fallback
    try {
      return parse(text)
    } catch (err) {
      throw new InputError(name, (err as Error).message)
    }
  }
}
