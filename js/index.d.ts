// Typings of the vibetensor Node.js package. The per-op signatures of `ops` are generated from the
// dispatcher's schemas into ops.d.ts when the addon is built (scripts/gen_types.mjs).
import type { Ops } from './ops.js';

export type DType = 'bool' | 'uint8' | 'int8' | 'int16' | 'int32' | 'int64' | 'float16' | 'bfloat16' | 'float32' | 'float64';
export type DeviceLike = 'cpu' | 'cuda' | `cuda:${number}` | number;
export class FloatScalar { constructor(v: number); readonly __vtFloat: number; }
export type ScalarLike = number | boolean | bigint | FloatScalar;
export type TensorLike = Tensor | ScalarLike;
export type NestedArray = number | boolean | NestedArray[];
export interface FactoryOptions { dtype?: DType; device?: DeviceLike; requiresGrad?: boolean }
export interface BackwardOptions { retainGraph?: boolean; createGraph?: boolean; inputs?: Tensor[] }
export interface GradOptions { retainGraph?: boolean; createGraph?: boolean; allowUnused?: boolean }
export type TypedArrayOf = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array | BigInt64Array;

export class Tensor {
  private constructor();
  readonly shape: number[];
  readonly dtype: DType;
  readonly device: string;
  readonly ndim: number;
  readonly disposed: boolean;
  requiresGrad: boolean;
  grad: Tensor | null;
  readonly isLeaf: boolean;
  /** The name of the node that made this tensor, or null for leaves. */
  readonly gradFn: string | null;
  numel(): number;
  stride(): number[];
  storageOffset(): number;
  isContiguous(): boolean;
  /** Frees this handle's reference now; later use throws. */
  dispose(): void;
  /** A copy of the elements, row-major (CUDA tensors are copied to the host). */
  toTypedArray(): TypedArrayOf;
  /** A view of a contiguous CPU tensor's memory: writes go to the tensor. */
  asTypedArray(): TypedArrayOf;
  toArray(): NestedArray;
  item(): number | boolean;
  detach(): Tensor;
  to(target: DeviceLike | DType, opts?: { nonBlocking?: boolean }): Tensor;
  cuda(device?: DeviceLike): Tensor;
  cpu(): Tensor;
  size(dim?: number): number[] | number;
  dim(): number;
  backward(gradient?: Tensor, opts?: BackwardOptions): void;
  requiresGrad_(flag?: boolean): this;
  /** Basic indexing: a number selects, [start, end, step] slices, null keeps a dimension. */
  at(...specs: (number | null | [number | null, (number | null)?, number?])[]): Tensor;
  /** Every op whose first argument is `self`, synchronously: t.add(u) is ops.vt.add.sync(t, u). */
  [method: string]: any;
}

export const ops: Ops;
export function refreshOps(): string[];
export function tensor(data: NestedArray | ArrayBufferView, opts?: FactoryOptions): Tensor;
export function fromTypedArray(array: ArrayBufferView, shape?: number[], opts?: { dtype?: DType; copy?: boolean }): Tensor;
export function empty(shape: number[], opts?: FactoryOptions): Tensor;
export function zeros(shape: number[], opts?: FactoryOptions): Tensor;
export function ones(shape: number[], opts?: FactoryOptions): Tensor;
export function full(shape: number[], value: ScalarLike, opts?: FactoryOptions): Tensor;
export function arange(start: number, end?: number, step?: number, opts?: { dtype?: DType; device?: DeviceLike }): Tensor;
export function rand(shape: number[], opts?: FactoryOptions): Tensor;
export function randn(shape: number[], opts?: FactoryOptions): Tensor;
export const scalar: { float(v: number): FloatScalar };
export function manualSeed(seed: number): void;
export function noGrad<T>(fn: () => T): T;
export function enableGrad<T>(fn: () => T): T;
export function isGradEnabled(): boolean;
export function setGradEnabled(on: boolean): void;
export function memoryStats(device?: DeviceLike): Record<string, number>;
export function loadLibrary(path: string): string[];

export namespace autograd {
  function backward(tensors: Tensor | Tensor[], gradTensors?: Tensor | Tensor[], opts?: BackwardOptions): Promise<void>;
  function backwardSync(tensors: Tensor | Tensor[], gradTensors?: Tensor | Tensor[], opts?: BackwardOptions): void;
  function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], gradOutputs?: Tensor | Tensor[], opts?: GradOptions): Promise<(Tensor | null)[]>;
  function gradSync(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], gradOutputs?: Tensor | Tensor[], opts?: GradOptions): (Tensor | null)[];
}

export interface Stream { device: number; handle: bigint }
export namespace cuda {
  function isAvailable(): boolean;
  function deviceCount(): number;
  function unavailableReason(): string;
  function synchronize(device?: number): void;
  function memoryStats(device?: number): Record<string, number>;
  function memorySnapshot(device?: number): Record<string, unknown>[];
  function emptyCache(): void;
  function resetPeakMemoryStats(device?: number): void;
  function currentStream(device?: number): Stream;
  function defaultStream(device?: number): Stream;
  function poolStream(device?: number, priority?: number): Stream;
  function setCurrentStream(stream: Stream): void;
  function streamQuery(stream: Stream): boolean;
  function streamSynchronize(stream: Stream): void;
  function withStream<T>(stream: Stream, fn: () => T): T;
  class Event {
    constructor(opts?: { device?: number; timing?: boolean });
    record(stream?: Stream): void;
    query(): boolean;
    synchronize(): void;
    wait(stream?: Stream): void;
    elapsedTime(end: Event): number;
    dispose(): void;
  }
}

export const runtime: {
  readonly threads: number;
  readonly inFlight: number;
  readonly waiting: number;
  readonly maxInFlight: number;
  setMaxInFlight(n: number): void;
};
export interface FabricCounters { ops: number; bytes: number; hits: number; fallbacks: Record<string, number> }
export const fabric: {
  stats(compute?: number, remote?: number): FabricCounters;
  events(): Record<string, unknown>[];
  resetStats(): void;
};

export class VtError extends Error { readonly kind: string }
export class RuntimeError extends VtError {}
export class ValueError extends VtError {}
export class NotImplementedError extends VtError {}
export class OutOfMemoryError extends VtError {}
export class TimeoutError extends VtError {}
export class InFlightLimitError extends VtError {}
export class IndexError extends RangeError { readonly kind: 'IndexError' }
export class VtTypeError extends TypeError { readonly kind: 'TypeError' }
