/** How many characters of a server-supplied string reach an error message or a terminal. */
export const MAX_SERVER_TEXT = 256;

const decoder = new TextDecoder();

/**
 * A string an NBD server sent (an error message, an export's name or
 * description), made fit for an error message or a terminal: at most
 * `maxCharacters` characters, control characters (escape sequences, CR/LF,
 * bells) turned into spaces, and format characters (bidirectional overrides,
 * zero-width characters) removed, so it cannot rewrite what a user sees.
 */
export function serverText(bytes: Uint8Array, maxCharacters = MAX_SERVER_TEXT): string {
  // Decoding more than can be kept only costs time: four bytes per character at most.
  const window = bytes.subarray(0, (maxCharacters + 1) * 4);
  const cleaned = decoder
    .decode(window)
    .replace(/[\p{Cc}\u2028\u2029]+/gu, ' ')
    .replace(/\p{Cf}/gu, '');
  const characters = Array.from(cleaned);
  const truncated = characters.length > maxCharacters || window.length < bytes.length;
  return truncated ? `${characters.slice(0, maxCharacters).join('')}…` : cleaned;
}
