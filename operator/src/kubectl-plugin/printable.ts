// Recorded text (statements, comments) comes from agents: its control characters are shown escaped,
// never sent to the approver's terminal, where they could move the cursor or rewrite what is shown.

// C0 (but tab and newline), DEL and C1, built from code points so the source holds none of them.
const CONTROL = new RegExp(
  `[${String.fromCharCode(0)}-${String.fromCharCode(8)}${String.fromCharCode(11)}-${String.fromCharCode(31)}${String.fromCharCode(127)}-${String.fromCharCode(159)}]`,
  'g',
);

export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
