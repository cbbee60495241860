/**
 * The portal's notices to the signed-in user (lease warnings, expiry and
 * reclaim, idleness), in the header: polled every 15 s, the count of those
 * not yet opened, and the latest ten when opened.
 */

import type { Notice } from "@merge/portal/client";
import { useEffect, useState } from "react";
import { call } from "./api.ts";

const SEEN_KEY = "merge.notices.seen";

export function Notices() {
  const [notices, setNotices] = useState<Notice[]>([]);
  const [open, setOpen] = useState(false);
  const [seen, setSeen] = useState(() => localStorage.getItem(SEEN_KEY) ?? "");
  useEffect(() => {
    let stop = false;
    const load = () =>
      call((a) => a.notifications()).then(
        (n) => {
          if (!stop) setNotices(n);
        },
        () => undefined,
      );
    void load();
    const t = setInterval(load, 15_000);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, []);
  const unseen = notices.filter((n) => n.id > seen).length;
  return (
    <span className="notices">
      <button
        type="button"
        className="link"
        data-testid="notices"
        onClick={() => {
          setOpen(!open);
          const last = notices.at(-1)?.id;
          if (last !== undefined) {
            localStorage.setItem(SEEN_KEY, last);
            setSeen(last);
          }
        }}
      >
        Notices{unseen > 0 ? ` (${unseen})` : ""}
      </button>
      {open && (
        <ul className="notice-list" data-testid="notice-list">
          {notices.length === 0 && <li className="muted">No notices.</li>}
          {notices
            .slice(-10)
            .reverse()
            .map((n) => (
              <li key={n.id} data-kind={n.kind}>
                <span className="small">{n.at.slice(0, 16).replace("T", " ")}</span> {n.message}
              </li>
            ))}
        </ul>
      )}
    </span>
  );
}
