// Resource names, as lqd validates them (no dependencies: the initial bundle uses this).

export const NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** null when name is valid, else why not. */
export function validateName(name: string): string | null {
  if (name === "") return "Name is required.";
  if (name.length > 63) return "Name must be at most 63 characters.";
  if (!NAME_RE.test(name)) return "Use lowercase letters, digits and dashes; start with a letter or digit.";
  return null;
}
