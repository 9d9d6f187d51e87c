/**
 * An `EventTarget` with typed `on()`, `once()` and `emit()`, shared by the cluster and its
 * worker handles.
 *
 * @module
 */

/** An `EventTarget` whose events, by name, carry the detail types of `M`. */
export class TypedEvents<M> extends EventTarget {
  /** Listens to `type`; returns the function that stops listening. */
  on<K extends keyof M & string>(type: K, listener: (detail: M[K]) => void): () => void {
    const wrapped = (event: Event) => listener((event as CustomEvent<M[K]>).detail);
    this.addEventListener(type, wrapped);
    return () => this.removeEventListener(type, wrapped);
  }

  /** Resolves with the detail of the next `type` event for which `filter` holds. */
  once<K extends keyof M & string>(
    type: K,
    filter: (detail: M[K]) => boolean = () => true,
  ): Promise<M[K]> {
    return new Promise((resolve) => {
      const off = this.on(type, (detail) => {
        if (!filter(detail)) return;
        off();
        resolve(detail);
      });
    });
  }

  /** Emits `type` with `detail`. */
  protected emit<K extends keyof M & string>(type: K, detail: M[K]): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
