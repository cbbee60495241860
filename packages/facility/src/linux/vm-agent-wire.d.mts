import type { Socket } from "node:net";

export const AGENT_PORTS: number;
export const CHUNK: number;
export interface AgentFrame {
  type: string;
  payload: Buffer;
}
export interface AgentSize {
  rows: number;
  cols: number;
}
export function frame(type: string, payload?: Buffer): Buffer;
export function openFrame(script: string, tty: boolean, size?: AgentSize): Buffer;
export function sizeFrame(size: AgentSize): Buffer;
export class Decoder {
  push(chunk: Buffer): AgentFrame[];
}
export const HELLO_MS: number;
export function vmName(dir: string): string;
export function takePort(
  dir: string,
  waitMs: number,
  from?: number,
): Promise<{ index: number; sock: string; release: () => void }>;
export function session(
  dir: string,
  o: {
    script: string;
    tty?: boolean;
    size?: AgentSize;
    waitMs?: number;
    helloMs?: number;
    helloTries?: number;
    onFrame: (f: AgentFrame) => void;
    onError?: (e: Error) => void;
    onClose?: () => void;
  },
): Promise<Socket & { port: number }>;
