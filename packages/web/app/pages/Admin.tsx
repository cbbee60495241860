/**
 * The administrators' dashboard: accounts waiting for activation (and the
 * rest), resources held per project and per user, and the facilities.
 */
import type { Api, Usage, User } from "../api.ts";
import { HealthView } from "../HealthView.tsx";
import { Action, Badge, Show, Table, useLoad, When } from "../parts.tsx";

interface Dashboard {
  users: User[];
  usage: Usage;
  facilities: Awaited<ReturnType<Api["facilities"]>>;
  resources: { total: number; allocated: number };
}

export function AdminPage() {
  const data = useLoad(async (a: Api): Promise<Dashboard> => {
    const [users, usage, facilities, resources] = await Promise.all([
      a.users(),
      a.usage(),
      a.facilities(),
      a.resources(),
    ]);
    return {
      users,
      usage,
      facilities,
      resources: { total: resources.length, allocated: resources.filter((r) => r.allocated).length },
    };
  }, "admin");
  return (
    <section>
      <h1>Administration</h1>
      <HealthView />
      <Show loaded={data}>
        {(d: Dashboard) => {
          const reload = data.state === "ready" ? data.reload : () => {};
          const pending = d.users.filter((u) => u.state === "pending");
          const others = d.users.filter((u) => u.state !== "pending");
          return (
            <>
              <h2>Waiting for activation ({pending.length})</h2>
              {pending.length === 0 ? <p className="muted">Nobody.</p> : <UserTable users={pending} reload={reload} />}
              <h2>Resource usage</h2>
              <p>
                {d.resources.allocated} of {d.resources.total} testbed nodes allocated.
              </p>
              <div className="columns even">
                <UsageTable title="Per project" rows={d.usage.byProject} testId="usage-projects" />
                <UsageTable title="Per user" rows={d.usage.byUser} testId="usage-users" />
              </div>
              <h2>Facilities</h2>
              <Table head={["Facility", "State", "Resources", "Endpoint", "Updated"]}>
                {d.facilities.map((f) => (
                  <tr key={f.name}>
                    <td>{f.name}</td>
                    <td>
                      <Badge value={f.state} />
                    </td>
                    <td>{f.resources}</td>
                    <td>{f.endpoint}</td>
                    <td>
                      <When time={f.updated} />
                    </td>
                  </tr>
                ))}
              </Table>
              <h2>Accounts ({others.length})</h2>
              <UserTable users={others} reload={reload} />
            </>
          );
        }}
      </Show>
    </section>
  );
}

function UserTable({ users, reload }: { users: User[]; reload: () => void }) {
  return (
    <Table testId="users" head={["User", "Name", "Email", "State", "Registered", ""]}>
      {users.map((u) => (
        <tr key={u.name} data-user={u.name}>
          <td>
            {u.name}
            {u.admin && <span className="muted"> (admin)</span>}
          </td>
          <td>{u.fullName}</td>
          <td>{u.email}</td>
          <td>
            <Badge value={u.state} />
          </td>
          <td>
            <When time={u.created} />
          </td>
          <td>
            {u.state !== "active" && (
              <Action label="Activate" run={(a) => a.setUserState(u.name, "active")} done={reload} />
            )}
            {u.state === "active" && !u.admin && (
              <Action label="Freeze" danger run={(a) => a.setUserState(u.name, "frozen")} done={reload} />
            )}
          </td>
        </tr>
      ))}
    </Table>
  );
}

function UsageTable({
  title,
  rows,
  testId,
}: {
  title: string;
  rows: Record<string, { resources: number; realizations: number }>;
  testId: string;
}) {
  const entries = Object.entries(rows).sort((x, y) => y[1].resources - x[1].resources);
  return (
    <div>
      <h3>{title}</h3>
      {entries.length === 0 ? (
        <p className="muted">Nothing held.</p>
      ) : (
        <Table testId={testId} head={[title === "Per project" ? "Project" : "User", "Resources", "Realizations"]}>
          {entries.map(([k, v]) => (
            <tr key={k}>
              <td>{k}</td>
              <td>
                <span className="bar" style={{ width: `${Math.min(100, v.resources * 8)}px` }} /> {v.resources}
              </td>
              <td>{v.realizations}</td>
            </tr>
          ))}
        </Table>
      )}
    </div>
  );
}
