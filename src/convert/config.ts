// Reading a Hugging Face config.json as convert_hf_to_gguf.py does (conversion/base.py
// ModelBase.find_hparam: the first of several accepted key names wins). Values are
// checked here, at the boundary: a bad or missing one is a FormatError on config.json.

import { FormatError } from '../formats/errors.ts';
import type { ModelIndex } from '../formats/model.ts';

export interface HfConfig {
  /** config.json's object ({} when no config was given). */
  readonly values: Readonly<Record<string, unknown>>;
  /** Its file name, for errors. */
  readonly file: string;
}

export function hfConfigOf(model: ModelIndex): HfConfig | null {
  const values = model.metadata.config;
  if (typeof values !== 'object' || values === null) return null;
  const file = model.files.find((f) => f.role === 'config')?.source.name ?? 'config.json';
  return { values: values as Record<string, unknown>, file };
}

function configError(config: HfConfig, reason: string): FormatError {
  return new FormatError(config.file, 0, reason);
}

/** The first of `keys` the config has, with its value. */
export function findHparam(config: HfConfig, keys: readonly string[]): { key: string; value: unknown } | undefined {
  const key = keys.find((k) => k in config.values && config.values[k] !== null);
  return key === undefined ? undefined : { key, value: config.values[key] };
}

/** A positive integer that fits a GGUF uint32, or undefined when none of `keys` is set. */
export function optionalCount(config: HfConfig, keys: readonly string[]): number | undefined {
  const found = findHparam(config, keys);
  if (!found) return undefined;
  const { key, value } = found;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 0xffffffff) {
    throw configError(config, `"${key}" is ${JSON.stringify(value)}, not a positive integer`);
  }
  return value;
}

export function requiredCount(config: HfConfig, keys: readonly string[]): number {
  const value = optionalCount(config, keys);
  if (value === undefined) throw configError(config, `needs ${keys.map((k) => `"${k}"`).join(' or ')}`);
  return value;
}

/** A finite number, or undefined when none of `keys` is set. */
export function optionalNumber(config: HfConfig, keys: readonly string[]): number | undefined {
  const found = findHparam(config, keys);
  if (!found) return undefined;
  if (typeof found.value !== 'number' || !Number.isFinite(found.value)) {
    throw configError(config, `"${found.key}" is ${JSON.stringify(found.value)}, not a number`);
  }
  return found.value;
}

export function optionalBoolean(config: HfConfig, key: string): boolean | undefined {
  const value = config.values[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw configError(config, `"${key}" is ${JSON.stringify(value)}, not true or false`);
  return value;
}

/** A token id as SpecialVocab takes it (gguf-py vocab.py _set_special_token): only a
 *  plain integer counts (Llama 3's eos list does not), a negative one is an error. */
export function specialTokenId(config: HfConfig, key: string): number | undefined {
  const value = config.values[key];
  if (typeof value !== 'number' || !Number.isInteger(value)) return undefined;
  if (value < 0) throw configError(config, `"${key}" is ${value}; a token id cannot be negative`);
  return value;
}

export function optionalObject(config: HfConfig, keys: readonly string[]): Readonly<Record<string, unknown>> | undefined {
  const found = findHparam(config, keys);
  if (!found) return undefined;
  if (typeof found.value !== 'object' || Array.isArray(found.value)) {
    throw configError(config, `"${found.key}" is ${JSON.stringify(found.value)}, not an object`);
  }
  return found.value as Record<string, unknown>;
}

export function stringList(config: HfConfig, key: string): string[] {
  const value = config.values[key];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

export { configError };
