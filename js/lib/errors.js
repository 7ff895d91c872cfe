// Errors from the core arrive as instances of these classes, with the core's message unchanged (the text
// Python shows) and `kind` naming the Python exception type it maps to there. TypeError-kind errors also
// extend JavaScript's TypeError, and IndexError extends RangeError, so generic handlers still work.
import { native } from './native.js';

function make(name, Base) {
  const C = class extends Base {
    constructor(message) {
      super(message);
      this.name = name;
      this.kind = name;
    }
  };
  Object.defineProperty(C, 'name', { value: name });
  return C;
}

export class VtError extends Error {}
export const RuntimeError = make('RuntimeError', VtError);
export const ValueError = make('ValueError', VtError);
export const NotImplementedError = make('NotImplementedError', VtError);
export const OutOfMemoryError = make('OutOfMemoryError', VtError);
export const TimeoutError = make('TimeoutError', VtError);
export const IndexError = make('IndexError', RangeError);
export const VtTypeError = make('TypeError', TypeError);
// The non-blocking call form (op.try) rejects with this when the in-flight cap is reached (lib/scheduler.js).
export const InFlightLimitError = make('InFlightLimitError', VtError);

native.setErrorClasses({
  RuntimeError, ValueError, NotImplementedError, OutOfMemoryError, TimeoutError, IndexError,
  TypeError: VtTypeError,
});
