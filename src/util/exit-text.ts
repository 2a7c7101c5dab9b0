/** How a child process ended, for messages: `exit code 1`, `killed by SIGTERM`. */
export function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `killed by ${signal}` : `exit code ${code}`;
}
