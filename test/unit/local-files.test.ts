/**
 * Upload `from`/`exclude` globs and the merge's `files` glob: the semantics the uploads rely on, and
 * a matcher that stays fast on hostile patterns and names (file names come from a pull request or a
 * shard's artifact).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { globCoverer, globMatcher } from '../../src/base/glob'
import { excludes, resolveSources, resolveUpload } from '../../src/plan/local-files'
import { Workspace } from '../../src/base/workspace'

const fixtures = mkdtempSync(join(tmpdir(), 'ssh-fleet-globs-'))
afterAll(() => rmSync(fixtures, { recursive: true, force: true }))
const workspace = new Workspace(fixtures)
const globMatch = (pattern: string, path: string): boolean => globMatcher(pattern)(path)
const globCovers = (pattern: string, path: string): boolean => globCoverer([pattern])(path)

describe('globMatch', () => {
  test('* and ? stay within a segment, case-sensitive; ** spans segments', () => {
    const cases: [string, string, boolean][] = [
      ['*.js', 'a.js', true],
      ['*.js', 'lib/a.js', false],
      ['*.js', 'A.JS', false],
      ['?.js', 'ab.js', false],
      ['lib/?.js', 'lib/a.js', true],
      ['**/*.js', 'a.js', true],
      ['**/*.js', 'lib/deep/a.js', true],
      ['lib/**/*.js', 'lib/a.js', true],
      ['lib/**/*.js', 'lib/x/y/a.js', true],
      ['lib/**/*.js', 'other/a.js', false],
      ['logs/**', 'logs/a/b.txt', true],
      ['logs/**', 'logs', false], // what is below logs/, as the RegExp had it
      ['**', 'any/thing', true],
      ['a.b', 'aXb', false], // . is literal
      ['a+b(c)', 'a+b(c)', true],
      ['*.env', '.env', true], // dot files are files
      ['lang/[ab].json', 'lang/a.json', true], // a class
      ['lang/[ab].json', 'lang/[ab].json', false],
      ['lang/[[]ab].json', 'lang/[ab].json', true],
      ['{a,b}.js', 'a.js', false], // braces are literal: no expansion
      ['{a,b}.js', '{a,b}.js', true],
      ['f*(1).txt', 'f*(1).txt', true], // no extglob
      ['f*(1).txt', 'f11.txt', false],
      ['#notes', '#notes', true], // no comments, no negation
      ['!keep', '!keep', true],
      ['a\0b*', 'a\0bc', true], // NUL and newlines are characters
      ['a\nb*', 'a\nbc', true],
      ['a\nb*', 'a/bc', false]
    ]
    for (const [pattern, path, expected] of cases) expect(globMatch(pattern, path), `${pattern} ~ ${path}`).toBe(expected)
  })

  test('** inside a segment is refused, naming both readings (minimatch: one segment; the matcher before: any depth)', () => {
    expect(() => globMatcher('**.map')).toThrow(
      "'**.map': ** spans directories only as a whole path segment; write **/*.map for any depth, or *.map for one segment"
    )
    expect(() => globMatcher('dist/a**b/x')).toThrow('write dist/**/a*b/x for any depth, or dist/a*b/x for one segment')
    expect(() => excludes(['ok', 'logs/**.log'])).toThrow(/'logs\/\*\*\.log'/)
  })

  test('globCovers: the path or a directory it is in', () => {
    expect(globCovers('cache', 'cache/a/b')).toBe(true)
    expect(globCovers('cache', 'cache')).toBe(true)
    expect(globCovers('cache', 'x/cache')).toBe(false)
    expect(globCovers('*.env', 'conf/.env')).toBe(false)
    expect(globCovers('**/*.env', 'conf/.env/x')).toBe(true)
    expect(excludes(['*.env', 'cache', 'logs/**'])('logs')).toBe(false)
    expect(excludes(['*.env', 'cache', 'logs/**'])('logs/a')).toBe(true)
    // A pattern as written names the path too: `[lang]` is a class and also the directory of that name.
    expect(excludes(['site/[lang]'])('site/[lang]/index.html')).toBe(true)
    expect(excludes(['site/[lang]'])('site/l/index.html')).toBe(true)
    expect(excludes(['site/[lang]'])('site/x/index.html')).toBe(false)
  })

  test('hostile patterns and names answer at once: stars, deep **, brace bombs, huge ranges, long classes', () => {
    const long = 'a'.repeat(5000)
    const deep = Array.from({ length: 200 }, () => 'aaaaaaaaaa').join('/')
    const cases: [string, string][] = [
      [`${'*a'.repeat(30)}*b`, long], // backtracking: minutes in picomatch 4.0.7 and minimatch 3.1.5
      [`**/${'*a'.repeat(30)}*b`, `${deep}/${long}`],
      [`${'**/'.repeat(2000)}*b`, deep],
      [`${'**/a*/'.repeat(30)}b`, deep], // picomatch 4.0.7: over 10 s
      ['{a,b}'.repeat(30), 'ab'.repeat(15)], // expanded: 2.4 s and 250 MB in minimatch 11
      ['{1..100000}{1..100000}', '11'],
      [`${'{'.repeat(5000)}a${'}'.repeat(5000)}`, 'a'],
      [`${`${'?'.repeat(64)}*`.repeat(50)}b`, long],
      [`${`[${'a-z'.repeat(500)}]*`.repeat(20)}b`, long]
    ]
    const started = performance.now()
    for (const [pattern, path] of cases) expect(globMatch(pattern, path), pattern.slice(0, 40)).toBe(false)
    const ms = performance.now() - started
    console.log(`hostile globs: ${ms.toFixed(0)} ms`)
    expect(ms).toBeLessThan(3000)
  })

  test('a file named with 200 dashes against *-*-*-*-* patterns answers at once (a backtracking RegExp took seconds per name)', () => {
    const name = '-'.repeat(200)
    const dist = join(fixtures, 'dist')
    mkdirSync(dist, { recursive: true })
    writeFileSync(join(dist, name), 'x')
    writeFileSync(join(dist, 'keep.js'), 'x')
    const started = performance.now()
    const found = resolveUpload('dist', '/srv/', workspace, ['**/*-*-*-*-*.map', '*-*-*-*-*-*.map'])
    expect(found.files.map((f) => f.relative).sort()).toEqual([name, 'keep.js'].sort())
    expect(() => resolveUpload('dist/**/*-*-*-*-*-*.map', '/srv/', workspace, [])).toThrow(/matches no file/)
    const deep = `${'a/'.repeat(100)}${name}`
    expect(globMatch('**/a/**/a/**/*-*-*-*-*.map', deep)).toBe(false)
    expect(globCovers('**/a/**/*-*-*-*-*.map', deep)).toBe(false)
    const ms = performance.now() - started
    console.log(`pathological globs: ${ms.toFixed(0)} ms`)
    expect(ms).toBeLessThan(1000)
  })
})

describe('upload sources', () => {
  const tree = (files: Record<string, string>): void => {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(fixtures, path, '..'), { recursive: true })
      writeFileSync(join(fixtures, path), text)
    }
  }
  const relative = (found: { files: { relative: string }[] }): string[] => found.files.map((f) => f.relative)

  test('a path that exists as written is taken as written: brackets and a star in real names', () => {
    tree({ 'site/[lang]/index.html': 'x', 'site/[lang]/en/a.html': 'x', 'odd/a*b': 'star', 'odd/aXb': 'other' })
    expect(relative(resolveUpload('site/[lang]', '/srv/', workspace))).toEqual(['en/a.html', 'index.html'])
    expect(relative(resolveUpload('site/[lang]/*/*.html', '/srv/', workspace))).toEqual(['en/a.html'])
    expect(resolveUpload('odd/a*b', '/srv/', workspace).files.map((f) => f.local)).toEqual([join(fixtures, 'odd/a*b')])
    expect(relative(resolveUpload('odd/a?b', '/srv/', workspace)).sort()).toEqual(['a*b', 'aXb'])
  })

  test('a list: each source below to as it would go alone (a directory its contents, a file by its name, a glob its matches)', () => {
    tree({ 'list/dist/app.js': 'x', 'list/dist/lib/b.js': 'x', 'list/config/app.yml': 'x', 'list/logs/1.log': 'x' })
    const found = resolveSources(['list/dist', 'list/config/app.yml', 'list/logs/*.log'], 'test', workspace)
    expect(relative(found)).toEqual(['app.js', 'lib/b.js', 'app.yml', '1.log'])
    expect(found.dirs).toEqual(['lib'])
    // One file alone keeps naming its destination.
    expect(relative(resolveSources(['list/config/app.yml'], 'test', workspace))).toEqual([''])
  })

  test('two sources landing on one remote path are an input error naming both', () => {
    tree({ 'clash/a/x.txt': 'a', 'clash/b/x.txt': 'b', 'clash/c/x.txt/inner': 'c' })
    expect(() => resolveSources(['clash/a/x.txt', 'clash/b/x.txt'], 'test', workspace)).toThrow(
      "'clash/a/x.txt' and 'clash/b/x.txt' both upload x.txt into test (clash/a/x.txt and clash/b/x.txt)"
    )
    expect(() => resolveSources(['clash/a', 'clash/c'], 'test', workspace)).toThrow("'clash/a' and 'clash/c' both upload x.txt into test")
    expect(() => resolveSources(['clash/a/*.txt', 'clash/b'], 'test', workspace)).toThrow(/both upload x\.txt/)
  })

  test('a comma is part of a name; a missing one says several sources are a YAML list', () => {
    tree({ 'comma/a,b.txt': 'x' })
    expect(relative(resolveSources(['comma/a,b.txt'], '/srv/', workspace))).toEqual(['a,b.txt'])
    expect(() => resolveSources(['comma/a.txt,comma/b.txt'], '/srv/', workspace)).toThrow(
      /for several sources write a YAML list: from: \[a, b\]/
    )
  })
})
