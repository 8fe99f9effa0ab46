// Types of demo/fleet.js for the tests that reuse it.
export function generateKey(): { private: string; public: string }
export function startFleet(count: number): Promise<{
  hosts: Array<{ name: string; port: number; home: string; knownHost: string; stop(): void }>
  privateKey: string
  stop(): void
}>
