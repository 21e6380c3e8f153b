import type { Route } from './validate.ts';

/**
 * Values by route, a route being its channel and its receiver: one receiver
 * under two spellings is one delivery. Maps within maps rather than one key
 * string per route: a mapping of 100,000 targets would hold 5 MB of those.
 */
export class RouteMap<V> {
  readonly #byChannel = new Map<string, Map<string, V>>();

  get(route: Route): V | undefined {
    return this.#byChannel.get(route.channel)?.get(route.receiver);
  }

  has(route: Route): boolean {
    return this.#byChannel.get(route.channel)?.has(route.receiver) ?? false;
  }

  set(route: Route, value: V): void {
    let receivers = this.#byChannel.get(route.channel);
    if (!receivers) this.#byChannel.set(route.channel, (receivers = new Map()));
    receivers.set(route.receiver, value);
  }
}

/** Each route once, the first of its receiver, in the order given. */
export function uniqueRoutes(lists: Iterable<Iterable<Route>>): Route[] {
  const seen = new RouteMap<true>();
  const routes: Route[] = [];
  for (const list of lists) {
    for (const route of list) {
      if (seen.has(route)) continue;
      seen.set(route, true);
      routes.push(route);
    }
  }
  return routes;
}
