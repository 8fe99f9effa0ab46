/** Sizes as people read them in reports: the one formatter, so no report shows `0.0 MB`. */

/** Decimal units (1 KB = 1000 bytes), as disks and network speeds are counted. */
const UNITS = ['KB', 'MB', 'GB', 'TB']

/** `512 B`, `1.5 KB`, `12.3 MB`: the unit chosen after rounding, so a size never shows as `0.0` or `1000.0` of one. */
export function size(bytes: number): string {
  if (Math.round(bytes) < 1000) return `${Math.round(bytes)} B`
  let unit = 0
  let value = bytes / 1000
  while (Number(value.toFixed(1)) >= 1000 && unit < UNITS.length - 1) {
    value /= 1000
    unit++
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`
}
