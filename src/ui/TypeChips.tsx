import { TYPE_INFOS, whyNotApplicable } from '../quant/type-data.ts';
import { colourOf } from './palette.ts';
import { moveFocus } from './roving.ts';

interface Props {
  selected: string[];
  rowLength: number | null;
  onToggle: (id: string) => void;
}

/**
 * Every type of the table as a toggle chip. A type whose block does not divide the rows is
 * compared on zero-padded rows (a dotted chip that says so); arrow keys move between chips.
 */
export function TypeChips({ selected, rowLength, onToggle }: Props) {
  return (
    <div className="chips" role="group" aria-label="Quantization types" onKeyDown={(e) => moveFocus(e, 'button.chip')}>
      {TYPE_INFOS.filter((t) => !t.activationOnly).map((t) => {
        const on = selected.includes(t.id);
        const why = rowLength === null ? null : whyNotApplicable(t, rowLength);
        const padTo = why && rowLength !== null ? Math.ceil(rowLength / t.blockSize) * t.blockSize : null;
        return (
          <button
            key={t.id}
            type="button"
            className={`chip${on ? ' on' : ''}${padTo ? ' pad' : ''}`}
            aria-pressed={on}
            title={padTo ? `${t.description}. Rows of ${rowLength} are compared zero-padded to ${padTo} (${why}): not storable in GGUF as is` : t.description}
            style={on ? { borderColor: colourOf(selected.indexOf(t.id)) } : undefined}
            onClick={() => onToggle(t.id)}
          >
            {t.id}
          </button>
        );
      })}
    </div>
  );
}
