/**
 * The tsvirt migration stream, version 1.
 *
 * ```
 * preamble  "TSVMIGR\n" (8 bytes) · u32 version
 * frame     u8 type · u8 flags (0) · u16 reserved (0) · u32 sequence · u32 length
 *           · payload (length bytes) · u32 CRC-32C of header and payload
 * ```
 * All integers little-endian. Each direction numbers its frames from 0, so a
 * lost, repeated or reordered frame is a protocol error even when its own
 * checksum is right. Every frame type has a size limit that the receiver
 * checks before buffering the payload.
 */
export const STREAM_MAGIC = new Uint8Array([0x54, 0x53, 0x56, 0x4d, 0x49, 0x47, 0x52, 0x0a]); // "TSVMIGR\n"
export const STREAM_VERSION = 1;
export const PREAMBLE_SIZE = 12;
export const FRAME_HEADER_SIZE = 12;
export const FRAME_TRAILER_SIZE = 4;
export const FRAME_OVERHEAD = FRAME_HEADER_SIZE + FRAME_TRAILER_SIZE;

export const FrameType = {
  /** Source → destination: JSON, the machine descriptor and stream settings. */
  Header: 1,
  /** Destination → source: the configuration check passed. */
  Accept: 2,
  /** Destination → source: JSON `{ reason }`, the configuration check failed. */
  Refuse: 3,
  /** Source → destination: a batch of page records. */
  RamPages: 4,
  /** Source → destination: JSON, the device state tree. */
  DeviceState: 5,
  /** Source → destination: JSON counts; the stream is complete. */
  End: 6,
  /** Destination → source: everything verified and loaded (and the machine resumed, if asked). */
  Complete: 7,
  /** Source → destination: the source gave up; discard everything. */
  Cancel: 8,
  /** Either way: JSON `{ reason }`, a failure on the sending side. */
  Error: 9,
  /** Source → destination: the page bitmap still to come; the destination starts running (post-copy). */
  PostcopyStart: 10,
  /** Destination → source: u32 page numbers the running guest is waiting for. */
  PageRequest: 11,
  /** Destination → source: the machine runs on the destination (the source's downtime ends). */
  PostcopyRunning: 12,
  /** Source → destination, first frame on a new connection: JSON `{ id }`, resume an interrupted post-copy. */
  Resume: 13,
  /** Destination → source, answering Resume: the bitmap of pages it still lacks. */
  Missing: 14,
  /** Source → destination, first frame on a multifd channel: JSON `{ id, index }`. */
  ChannelHello: 15,
  /** Source → destination, last frame on a multifd channel: JSON page counts of that channel. */
  ChannelEnd: 16,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const FRAME_TYPE_NAMES = new Map<number, string>(Object.entries(FrameType).map(([name, value]) => [value, name]));

export function frameTypeName(type: number): string {
  return FRAME_TYPE_NAMES.get(type) ?? `unknown(${type})`;
}

/** Page records inside a RamPages frame: u8 kind · u32 page number · kind data. */
export const PageRecord = {
  /** 4096 raw bytes follow. */
  Normal: 1,
  /** Nothing follows: the page is all zeros. */
  Zero: 2,
  /** u16 length · XBZRLE delta against the page as last sent. */
  Xbzrle: 3,
} as const;
export type PageRecord = (typeof PageRecord)[keyof typeof PageRecord];
export const PAGE_RECORD_HEADER = 5;

/** Size limits per frame type; the receiver refuses bigger frames before buffering them. */
export interface FrameLimits {
  readonly ramPagesBytes: number;
  readonly deviceStateBytes: number;
  readonly controlBytes: number;
}

export const DEFAULT_FRAME_LIMITS: FrameLimits = {
  ramPagesBytes: 1024 * 1024,
  deviceStateBytes: 16 * 1024 * 1024,
  controlBytes: 64 * 1024,
};

export function frameLimit(type: number, limits: FrameLimits): number | undefined {
  switch (type) {
    case FrameType.RamPages:
    case FrameType.PostcopyStart:
    case FrameType.Missing:
      return limits.ramPagesBytes;
    case FrameType.DeviceState:
      return limits.deviceStateBytes;
    case FrameType.Header:
    case FrameType.Accept:
    case FrameType.Refuse:
    case FrameType.End:
    case FrameType.Complete:
    case FrameType.Cancel:
    case FrameType.Error:
    case FrameType.PageRequest:
    case FrameType.PostcopyRunning:
    case FrameType.Resume:
    case FrameType.ChannelHello:
    case FrameType.ChannelEnd:
      return limits.controlBytes;
    default:
      return undefined;
  }
}
