// Output helpers of the demos: bold step titles and colours on a terminal, plain text otherwise.
const tty = process.stdout.isTTY;
export const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
export const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);
export const green = (s: string) => (tty ? `\x1b[32m${s}\x1b[0m` : s);
export const red = (s: string) => (tty ? `\x1b[31m${s}\x1b[0m` : s);
export const step = (n: number, text: string) => console.log(`\n${bold(`${n}. ${text}`)}`);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
