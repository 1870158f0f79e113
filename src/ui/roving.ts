// Keyboard movement inside a group (chips, tabs, table rows): arrow keys, Home and End move the
// focus to the previous / next / first / last item, as the ARIA authoring practices describe.
import type { KeyboardEvent } from 'react';

/** Moves focus among the group's items matching `selector`; returns the item focused, if any. */
export function moveFocus(event: KeyboardEvent<HTMLElement>, selector: string, orientation: 'horizontal' | 'vertical' | 'both' = 'both'): HTMLElement | null {
  const back = orientation === 'vertical' ? ['ArrowUp'] : orientation === 'horizontal' ? ['ArrowLeft'] : ['ArrowLeft', 'ArrowUp'];
  const forward = orientation === 'vertical' ? ['ArrowDown'] : orientation === 'horizontal' ? ['ArrowRight'] : ['ArrowRight', 'ArrowDown'];
  const key = event.key;
  if (![...back, ...forward, 'Home', 'End'].includes(key)) return null;
  const items = [...event.currentTarget.querySelectorAll<HTMLElement>(selector)];
  if (!items.length) return null;
  const at = items.indexOf(document.activeElement as HTMLElement);
  const next = key === 'Home' ? 0 : key === 'End' ? items.length - 1 : forward.includes(key) ? Math.min(items.length - 1, at + 1) : Math.max(0, at - 1);
  event.preventDefault();
  items[next].focus();
  return items[next];
}
