import { QUANT_TYPES, whyNotApplicable } from '../quant/types.ts';
import { colourOf } from './palette.ts';

interface Props {
  selected: string[];
  rowLength: number | null;
  onToggle: (id: string) => void;
}

/** Every type of the table as a toggle chip; a type that cannot apply says why. */
export function TypeChips({ selected, rowLength, onToggle }: Props) {
  return (
    <div className="chips" role="group" aria-label="Quantization types">
      {QUANT_TYPES.filter((t) => !t.activationOnly).map((t) => {
        const on = selected.includes(t.id);
        const why = rowLength === null ? null : whyNotApplicable(t, rowLength);
        return (
          <button
            key={t.id}
            type="button"
            className={`chip${on ? ' on' : ''}${why ? ' na' : ''}`}
            aria-pressed={on}
            title={why ?? t.description}
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
