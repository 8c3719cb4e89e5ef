import { SfuError } from '../errors/catalogue.js';

/**
 * The room lives on another node: the client repeats its request there. Over signalling the error
 * body carries `location` (the node's base URL); over REST the answer is a 307 whose Location
 * header names the same path on that node.
 */
export class RoomElsewhereError extends SfuError {
  constructor(
    /** Base URL of the node hosting the room, e.g. https://sfu-2.example.fr */
    readonly location: string,
  ) {
    // Also the detail: clients that only read code/message/detail (the SDK) find the URL there.
    super('ROOM_ELSEWHERE', location);
  }

  override toJSON(): ReturnType<SfuError['toJSON']> & { location: string } {
    return { ...super.toJSON(), location: this.location };
  }

  /** The same request's URL on the hosting node (REST Location header). */
  redirectFor(requestPath: string): string {
    return new URL(requestPath, this.location).toString();
  }
}

export function isRoomElsewhere(value: unknown): value is RoomElsewhereError {
  return value instanceof RoomElsewhereError;
}
