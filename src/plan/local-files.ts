import { readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs'
import { basename, join, relative, sep } from 'node:path'
import type { UploadFile } from './settings'
import type { Workspace } from '../base/workspace'
import { globCoverer, globMatcher, isGlob } from '../base/glob'

function toPosix(path: string): string {
  return sep === '/' ? path : path.split(sep).join('/')
}

/**
 * The mode a file gets on the host when the step sets none: 0755 when it is executable on the runner,
 * else 0644. Never the runner's mode as is: on Windows every file reads 0666 (world-writable).
 */
function defaultMode(mode: number): number {
  return mode & 0o111 ? 0o755 : 0o644
}

/**
 * Every file and directory below `root`, relative to it, with / separators. A symbolic link is
 * followed when what it points to is inside `root` too; one that leads outside is refused (it could
 * carry a runner-only file, a secret, to the hosts), naming the link.
 */
function walk(root: string, from: string): { files: UploadFile[]; dirs: string[] } {
  const files: UploadFile[] = []
  const dirs: string[] = []
  const realRoot = realpathSync(root)
  const inside = (real: string): boolean => real === realRoot || real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)
  const seen = new Set<string>([realRoot])
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name)
      const rel = toPosix(relative(root, path))
      if (entry.isSymbolicLink()) {
        let real: string
        try {
          real = realpathSync(path)
        } catch {
          throw new Error(`'${from}': ${rel} is a symbolic link to nothing (${readlinkSync(path)})`)
        }
        if (!inside(real))
          throw new Error(
            `'${from}': ${rel} is a symbolic link to ${real}, outside ${from}: refused (copy what it points to into ${from}, or upload that path itself)`
          )
      }
      const stat = statSync(path)
      if (stat.isDirectory()) {
        const real = realpathSync(path)
        if (seen.has(real)) continue // a link back up the tree: its files come once
        seen.add(real)
        dirs.push(rel)
        visit(path)
      } else if (stat.isFile()) {
        files.push({ local: path, relative: rel, size: stat.size, mode: defaultMode(stat.mode) })
      }
    }
  }
  visit(root)
  return { files, dirs }
}

/**
 * Resolves files on the runner through the workspace (relative to it; `..`, an absolute path or a link
 * leading out is an error naming it): a file, a directory (its contents), or a glob (matches, relative
 * to the glob's directory part). An upload's `from` and the merge action's `files` are read this way.
 * Throws when nothing is there.
 */
export function resolveUpload(
  from: string,
  to: string,
  workspace: Workspace,
  exclude: string[] = []
): { files: UploadFile[]; dirs: string[] } {
  const found = resolveFrom(from, to, workspace)
  if (exclude.length === 0) return found
  const excluded = excludes(exclude)
  const files = found.files.filter((f) => !excluded(f.relative))
  if (files.length === 0 && found.files.length > 0) throw new Error(`'${from}': exclude leaves no file`)
  return { files, dirs: found.dirs.filter((d) => !excluded(d)) }
}

/**
 * Whether a path (relative, / separators) is excluded by one of `globs`: the path itself or a
 * directory it is in matches (so `cache` and `cache/**` both leave out everything below cache/).
 */
export function excludes(globs: string[]): (path: string) => boolean {
  return globCoverer(globs.map((g) => g.replace(/\/+$/, '')))
}

function resolveFrom(from: string, to: string, workspace: Workspace): { files: UploadFile[]; dirs: string[] } {
  const path = workspace.resolve(from)
  let stat
  try {
    stat = statSync(path)
  } catch {
    if (isGlob(from)) return resolveGlob(from, workspace)
    throw new Error(`'${from}' does not exist (resolved to ${path})${from.includes(',') ? SEVERAL_SOURCES : ''}`)
  }
  if (stat.isDirectory()) return walk(path, from)
  if (!stat.isFile()) throw new Error(`'${from}' is not a file or directory`)
  return {
    files: [
      {
        local: path,
        relative: to.endsWith('/') || to === '~' || to === '.' ? basename(path) : '',
        size: stat.size,
        mode: defaultMode(stat.mode)
      }
    ],
    dirs: []
  }
}

/** A comma is part of a name (a file may have one in it): several sources are a YAML list. */
const SEVERAL_SOURCES = '; for several sources write a YAML list: from: [a, b]'

/**
 * A glob's matches below its directory part: the leading segments that are plain names, or that exist
 * as written (`site/[lang]/*.html` looks in the directory `site/[lang]`), checked like any path (`..` or
 * a link leading out is refused); the rest is matched against the paths below it.
 */
function resolveGlob(from: string, workspace: Workspace): { files: UploadFile[]; dirs: string[] } {
  const segments = toPosix(from).split('/')
  const isDir = (path: string): boolean => {
    try {
      return statSync(path).isDirectory()
    } catch {
      return false
    }
  }
  const dirOf = (n: number): string => workspace.resolve(n === 0 ? '.' : `${segments.slice(0, n).join('/')}/`)
  let n = 0
  while (n < segments.length - 1 && (!isGlob(segments[n]) || isDir(dirOf(n + 1)))) n++
  const base = dirOf(n)
  const match = globMatcher(segments.slice(n).join('/'))
  if (!isDir(base)) throw new Error(`'${from}' matches nothing: ${workspace.show(base)} is not a directory`)
  const files = walk(base, from).files.filter((f) => match(f.relative))
  if (files.length === 0) throw new Error(`'${from}' matches no file (looked in ${base})`)
  return { files, dirs: [] }
}

/**
 * An upload's sources, each resolved as resolveUpload does, together below `to`. One source that is a
 * file may name its destination (`to` without a trailing /); several, as scp and cp do, go into `to` as
 * a directory: a directory's contents, a file by its name, a glob's matches. Two sources that would land
 * on one remote path are an error naming both, before anything connects.
 */
export function resolveSources(
  from: string[],
  to: string,
  workspace: Workspace,
  exclude: string[] = []
): { files: UploadFile[]; dirs: string[] } {
  if (from.length === 1) return resolveUpload(from[0], to, workspace, exclude)
  const into = to.endsWith('/') ? to : `${to}/`
  const files: UploadFile[] = []
  const dirs = new Set<string>()
  // Each remote path below `to` with the source that puts it there: a file, or a directory a file is in.
  const whose = new Map<string, { source: string; local: string; dir: boolean }>()
  const claim = (path: string, source: string, local: string, dir: boolean): void => {
    const earlier = whose.get(path)
    if (earlier === undefined) return void whose.set(path, { source, local, dir })
    if (earlier.dir && dir) return
    throw new Error(
      `'${earlier.source}' and '${source}' both upload ${path} into ${to} (${workspace.show(earlier.local)} and ${workspace.show(local)}): rename one, or give each its own upload step`
    )
  }
  for (const source of from) {
    const found = resolveUpload(source, into, workspace, exclude)
    for (const file of found.files) {
      const parts = file.relative.split('/')
      parts.slice(0, -1).forEach((_, i) => claim(parts.slice(0, i + 1).join('/'), source, file.local, true))
      claim(file.relative, source, file.local, false)
      files.push(file)
    }
    for (const dir of found.dirs) {
      claim(dir, source, join(workspace.resolve(source), dir), true)
      dirs.add(dir)
    }
  }
  return { files, dirs: [...dirs].sort() }
}

/** The paths of the files a file, directory or glob names on the runner, in a stable order. */
export function localFiles(pattern: string, workspace: Workspace): string[] {
  return resolveUpload(pattern, '', workspace).files.map((f) => f.local)
}
