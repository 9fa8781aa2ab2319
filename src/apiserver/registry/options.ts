// The options of the registry's requests, as the kube API's query parameters give them.
import type { WriteOptions } from '../../runtime/client.js';

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';
export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

export interface RequestOptions extends WriteOptions {
  fieldValidation?: FieldValidation;
  /** Warnings for the client (sent as `Warning` headers). */
  warnings?: string[];
}

export interface PatchOptions extends RequestOptions {
  force?: boolean;
}
