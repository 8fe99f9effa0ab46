import { readdirSync, statSync } from 'node:fs'
import { basename, join, relative, resolve, sep } from 'node:path'
import type { UploadFile } from './settings'

const MAGIC = /[*?[]/

function toPosix(path: string): string {
  return sep === '/' ? path : path.split(sep).join('/')
}

/** Every file and directory below `root`, relative to it, with / separators. */
function walk(root: string): { files: UploadFile[]; dirs: string[] } {
  const files: UploadFile[] = []
  const dirs: string[] = []
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name)
      const stat = statSync(path) // follows symbolic links: the host gets what they point to
      const rel = toPosix(relative(root, path))
      if (stat.isDirectory()) {
        dirs.push(rel)
        visit(path)
      } else if (stat.isFile()) {
        files.push({ local: path, relative: rel, size: stat.size, mode: stat.mode & 0o777 })
      }
    }
  }
  visit(root)
  return { files, dirs }
}

/** `*` and `?` within a path segment, `**` across segments. */
function globRegExp(pattern: string): RegExp {
  let re = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '*' && pattern[i + 1] === '*') {
      re += pattern[i + 2] === '/' ? '(?:.*/)?' : '.*'
      i += pattern[i + 2] === '/' ? 2 : 1
    } else if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

/**
 * Resolves files on the runner (relative to `workspace`): a file, a directory (its contents), or a
 * glob (matches, relative to the glob's directory part). An upload's `from` and the merge action's
 * `files` are read this way. Throws when nothing is there.
 */
export function resolveUpload(from: string, to: string, workspace: string): { files: UploadFile[]; dirs: string[] } {
  const path = resolve(workspace, from)
  if (MAGIC.test(from)) {
    const segments = toPosix(path).split('/')
    const firstMagic = segments.findIndex((s) => MAGIC.test(s))
    const base = segments.slice(0, firstMagic).join('/') || '/'
    const pattern = globRegExp(segments.slice(firstMagic).join('/'))
    let found: { files: UploadFile[]; dirs: string[] }
    try {
      found = walk(base)
    } catch {
      throw new Error(`'${from}' matches nothing: ${base} is not a directory`)
    }
    const files = found.files.filter((f) => pattern.test(f.relative))
    if (files.length === 0) throw new Error(`'${from}' matches no file (looked in ${base})`)
    return { files, dirs: [] }
  }
  let stat
  try {
    stat = statSync(path)
  } catch {
    throw new Error(`'${from}' does not exist (resolved to ${path})`)
  }
  if (stat.isDirectory()) return walk(path)
  if (!stat.isFile()) throw new Error(`'${from}' is not a file or directory`)
  return { files: [{ local: path, relative: to.endsWith('/') ? basename(path) : '', size: stat.size, mode: stat.mode & 0o777 }], dirs: [] }
}

/** The paths of the files a file, directory or glob names on the runner, in a stable order. */
export function localFiles(pattern: string, workspace: string): string[] {
  return resolveUpload(pattern, '', workspace).files.map((f) => f.local)
}
