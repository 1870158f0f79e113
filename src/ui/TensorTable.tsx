import { useMemo, useState } from 'react';
import type { TensorSummary } from '../store/types.ts';
import { formatBytes, formatCount, formatShape } from './format.ts';
import { moveFocus } from './roving.ts';

type SortKey = 'index' | 'name' | 'params' | 'nbytes';

interface Props {
  tensors: TensorSummary[];
  selected: string | null;
  onSelect: (name: string) => void;
}

/** Searchable, sortable list of the model's tensors; a click selects one. */
export function TensorTable({ tensors, selected, onSelect }: Props) {
  const [query, setQuery] = useState('');
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'index', desc: false });
  const rows = useMemo(() => {
    const q = query.trim().toLowerCase();
    const filtered = tensors.map((t, index) => ({ t, index })).filter(({ t }) => !q || t.name.toLowerCase().includes(q));
    const value = ({ t, index }: { t: TensorSummary; index: number }) =>
      sort.key === 'index' ? index : sort.key === 'name' ? t.name : t[sort.key];
    filtered.sort((a, b) => {
      const va = value(a), vb = value(b);
      const c = va < vb ? -1 : va > vb ? 1 : 0;
      return sort.desc ? -c : c;
    });
    return filtered;
  }, [tensors, query, sort]);
  const header = (key: SortKey, label: string, cls = '') => (
    <th className={cls} aria-sort={sort.key === key ? (sort.desc ? 'descending' : 'ascending') : 'none'}>
      <button type="button" className="link" onClick={() => setSort((s) => ({ key, desc: s.key === key ? !s.desc : key !== 'name' }))}>
        {label}
        {sort.key === key ? (sort.desc ? ' ↓' : ' ↑') : ''}
      </button>
    </th>
  );
  return (
    <section className="panel tensors" aria-label="Tensors">
      <input type="search" placeholder={`Search ${tensors.length} tensors…`} aria-label="Search tensors" value={query} onChange={(e) => setQuery(e.target.value)} />
      <div className="scroll">
        <table>
          <thead>
            <tr>
              {header('name', 'Tensor')}
              <th>Shape</th>
              <th>dtype</th>
              {header('params', 'Params', 'num')}
              {header('nbytes', 'Bytes', 'num')}
            </tr>
          </thead>
          {/* Keyboard: one tab stop (the selected row), arrow keys move, Enter or Space selects. */}
          <tbody onKeyDown={(e) => moveFocus(e, 'tr', 'vertical')}>
            {rows.map(({ t }, i) => (
              <tr
                key={t.name}
                className={t.name === selected ? 'selected' : ''}
                aria-selected={t.name === selected}
                tabIndex={t.name === selected || (selected === null && i === 0) ? 0 : -1}
                onClick={() => onSelect(t.name)}
                onKeyDown={(e) => {
                  if (e.key !== 'Enter' && e.key !== ' ') return;
                  e.preventDefault();
                  onSelect(t.name);
                }}
              >
                <td className="name" title={t.name}>
                  {t.name}
                </td>
                <td>{formatShape(t.shape)}</td>
                <td>{t.dtype}</td>
                <td className="num">{formatCount(t.params)}</td>
                <td className="num">{formatBytes(t.nbytes)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
