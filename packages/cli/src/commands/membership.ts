// mrg membership add|remove|role <project> <user>
import type { Command } from "commander";
import { action, done, type OutputFlags, portalOptions, print, signedIn, UsageError } from "../client.ts";

type Role = "maintainer" | "member";
function role(r: string | undefined): Role {
  if (r === undefined || r === "member") return "member";
  if (r === "maintainer") return "maintainer";
  throw new UsageError(`role must be member or maintainer, not '${r}'`);
}

export function registerMembership(program: Command): void {
  const m = program.command("membership").description("manage who belongs to a project");
  portalOptions(
    m
      .command("add <project> <user>")
      .description("add a user to a project")
      .option("--role <role>", "member (default) or maintainer"),
  ).action(
    action(async (project: string, user: string, f: OutputFlags & { portal?: string; role?: string }) => {
      print(f, await signedIn(f).addMember(project, user, role(f.role)), ["project", "user", "role"]);
    }),
  );
  portalOptions(
    m.command("role <project> <user> <role>").description("change a member's role: member or maintainer"),
  ).action(
    action(async (project: string, user: string, r: string, f: OutputFlags & { portal?: string }) => {
      print(f, await signedIn(f).setMemberRole(project, user, role(r)), ["project", "user", "role"]);
    }),
  );
  portalOptions(m.command("remove <project> <user>").description("remove a user from a project")).action(
    action(async (project: string, user: string, f: OutputFlags & { portal?: string }) => {
      await signedIn(f).removeMember(project, user);
      done(f, `removed ${user} from ${project}`, { project, user, removed: true });
    }),
  );
  portalOptions(m.command("list <project>").description("a project's members and their roles")).action(
    action(async (project: string, f: OutputFlags & { portal?: string }) => {
      print(f, await signedIn(f).members(project), ["user", "role", "added"]);
    }),
  );
}
