/**
 * Wire schemas (TypeBox → JSON Schema → OpenAPI 3.1). Bodies reject unknown
 * fields; names use the one strict pattern; responses list exactly the fields
 * that may leave the portal (a user's password hash never does).
 */
import Type from "typebox";
import { NAME_PATTERN } from "./names.ts";

export const Name = (description: string) => Type.String({ pattern: NAME_PATTERN, description });
export const Visibility = Type.Union([Type.Literal("public"), Type.Literal("protected"), Type.Literal("private")]);
export const Role = Type.Union([Type.Literal("creator"), Type.Literal("maintainer"), Type.Literal("member")]);
const Time = Type.String({ description: "RFC 3339 time" });
const strict = { additionalProperties: false } as const;

export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: "machine-readable code" }),
    message: Type.String({ description: "what went wrong and what to do" }),
    field: Type.Optional(Type.String({ description: "the offending field, when there is one" })),
  },
  { $id: "Error" },
);

export const User = Type.Object({
  name: Type.String(),
  email: Type.String(),
  fullName: Type.String(),
  state: Type.Union([Type.Literal("pending"), Type.Literal("active"), Type.Literal("frozen")]),
  admin: Type.Boolean(),
  created: Time,
});
export const Registration = Type.Object(
  {
    name: Name("user name; also the name of the personal project"),
    email: Type.String({ format: "email", maxLength: 254 }),
    fullName: Type.Optional(Type.String({ maxLength: 128 })),
    password: Type.String({ minLength: 8, maxLength: 256 }),
  },
  strict,
);
export const UserUpdate = Type.Object(
  {
    email: Type.Optional(Type.String({ format: "email", maxLength: 254 })),
    fullName: Type.Optional(Type.String({ maxLength: 128 })),
    password: Type.Optional(Type.String({ minLength: 8, maxLength: 256 })),
    currentPassword: Type.Optional(
      Type.String({
        maxLength: 256,
        description: "needed to change one's own password (not an administrator's reset)",
      }),
    ),
  },
  strict,
);
export const UserState = Type.Object(
  { state: Type.Union([Type.Literal("active"), Type.Literal("frozen")]), admin: Type.Optional(Type.Boolean()) },
  strict,
);

export const Login = Type.Object(
  {
    username: Name("user name"),
    password: Type.String({ minLength: 1, maxLength: 256 }),
    tokenName: Type.Optional(Name("name for the token this creates")),
  },
  strict,
);
export const Token = Type.Object({
  id: Type.String(),
  user: Type.String(),
  name: Type.String(),
  created: Time,
  expires: Type.Union([Time, Type.Null()]),
});
export const NewToken = Type.Object(
  {
    name: Name("what the token is for"),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 31_536_000 })),
  },
  strict,
);
export const IssuedToken = Type.Object({ token: Type.String({ description: "shown once" }), record: Token });

export const SshKey = Type.Object({
  user: Type.String(),
  fingerprint: Type.String(),
  key: Type.String(),
  created: Time,
});
export const NewSshKey = Type.Object(
  {
    key: Type.String({
      maxLength: 16384,
      pattern: "^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( [^\\n]*)?$",
      description: "OpenSSH public key line",
    }),
  },
  strict,
);

export const Project = Type.Object({
  name: Type.String(),
  description: Type.String(),
  visibility: Visibility,
  personal: Type.Boolean(),
  creator: Type.String(),
  created: Time,
});
export const NewProject = Type.Object(
  {
    name: Name("project name"),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    visibility: Type.Optional(Visibility),
  },
  strict,
);
export const ProjectUpdate = Type.Object(
  { description: Type.Optional(Type.String({ maxLength: 1024 })), visibility: Type.Optional(Visibility) },
  strict,
);

export const Member = Type.Object({ project: Type.String(), user: Type.String(), role: Role, added: Time });
export const NewMember = Type.Object({ user: Name("user to add"), role: Type.Optional(Role) }, strict);
export const MemberUpdate = Type.Object({ role: Role }, strict);

export const Experiment = Type.Object({
  name: Type.String(),
  project: Type.String(),
  description: Type.String(),
  visibility: Visibility,
  creator: Type.String(),
  created: Time,
  revisions: Type.Integer(),
});
export const NewExperiment = Type.Object(
  {
    name: Name("experiment name"),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    visibility: Type.Optional(Visibility),
  },
  strict,
);
export const ExperimentUpdate = Type.Object(
  { description: Type.Optional(Type.String({ maxLength: 1024 })), visibility: Type.Optional(Visibility) },
  strict,
);

export const Lang = Type.Union([Type.Literal("ts"), Type.Literal("py"), Type.Literal("xir")]);
export const CompileErrorT = Type.Object({
  message: Type.String(),
  line: Type.Optional(Type.Integer()),
  column: Type.Optional(Type.Integer()),
  field: Type.Optional(Type.String()),
});
export const Revision = Type.Object({
  project: Type.String(),
  experiment: Type.String(),
  number: Type.Integer(),
  lang: Lang,
  sourceHash: Type.String(),
  sourceBytes: Type.Integer(),
  status: Type.Union([Type.Literal("compiled"), Type.Literal("error")]),
  errors: Type.Array(CompileErrorT),
  xirHash: Type.Union([Type.String(), Type.Null()]),
  nodes: Type.Integer(),
  links: Type.Integer(),
  pushedBy: Type.String(),
  created: Time,
});
export const RevisionDetail = Type.Object({
  revision: Revision,
  source: Type.String(),
  xir: Type.Unknown({ description: "compiled XIR experiment, or null" }),
});
/**
 * A model's file name as the CLI sends it (a base name): no directory, no `.`/`..`, no control
 * characters (a NUL reached the compiler's process spawn), at most 128 characters.
 */
export const Filename = Type.String({
  pattern: "^(?!\\.{1,2}$)[^/\\\\\\u0000-\\u001f\\u007f]{1,128}$",
  description: "the model's file name (a base name, no directory)",
});
export const Push = Type.Object(
  {
    source: Type.String({ description: "model source (model.ts / model.py) or XIR JSON" }),
    lang: Lang,
    filename: Type.Optional(Filename),
  },
  strict,
);
export const CompileRequest = Push;
export const CompileResult = Type.Object({
  status: Type.Union([Type.Literal("compiled"), Type.Literal("error")]),
  errors: Type.Array(CompileErrorT),
  xir: Type.Unknown(),
});

export const Realization = Type.Object({
  name: Type.String(),
  id: Type.String({ description: "rlz.exp.proj" }),
  experiment: Type.String(),
  project: Type.String(),
  revision: Type.Integer(),
  state: Type.Union([Type.Literal("pending"), Type.Literal("accepted"), Type.Literal("failed")]),
  creator: Type.String(),
  created: Time,
  expires: Type.Union([Time, Type.Null()]),
  accepted: Type.Optional(Time),
  leaseSeconds: Type.Optional(Type.Integer({ description: "pending: the lease its accept starts, seconds" })),
  diagnostics: Type.Array(Type.String()),
  resources: Type.Array(Type.String()),
  realization: Type.Optional(Type.Unknown()),
  closest: Type.Optional(
    Type.Unknown({
      description:
        "bestEffort only, on failure: the closest mapping found (never reserved, never acceptable); diagnostics list every constraint it leaves unmet",
    }),
  ),
});
export const NewRealization = Type.Object(
  {
    name: Name("realization name"),
    revision: Type.Optional(Type.Integer({ minimum: 1, description: "default: the latest" })),
    accept: Type.Optional(Type.Boolean({ description: "accept at once" })),
    durationSeconds: Type.Optional(
      Type.Integer({
        minimum: 60,
        description: "how long to hold it once accepted (default and maximum: the policy's lease section)",
      }),
    ),
    bestEffort: Type.Optional(
      Type.Boolean({
        description: "on failure, also return the closest mapping found, with every violated constraint in diagnostics",
      }),
    ),
  },
  strict,
);
export const RealizationAction = Type.Object(
  { action: Type.Union([Type.Literal("accept"), Type.Literal("reject")]) },
  strict,
);

export const Facility = Type.Object({
  name: Type.String(),
  description: Type.String(),
  endpoint: Type.String(),
  state: Type.Union([Type.Literal("active"), Type.Literal("inactive")]),
  registered: Time,
  updated: Time,
  resources: Type.Integer(),
  hasCertificate: Type.Boolean(),
  certificateExpires: Type.Union([Time, Type.Null()], { description: "when the facility certificate expires" }),
});
export const NewFacility = Type.Object(
  {
    name: Name("facility name"),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    endpoint: Type.String({ maxLength: 512, pattern: "^(https?|grpcs?)://[^\\s]+$" }),
    certificate: Type.Optional(Type.String({ maxLength: 65536 })),
    state: Type.Optional(Type.Union([Type.Literal("active"), Type.Literal("inactive")])),
    model: Type.Unknown({ description: "XIR facility resource model" }),
  },
  strict,
);
export const FacilityUpdate = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    endpoint: Type.Optional(Type.String({ maxLength: 512, pattern: "^(https?|grpcs?)://[^\\s]+$" })),
    certificate: Type.Optional(Type.String({ maxLength: 65536 })),
    state: Type.Optional(Type.Union([Type.Literal("active"), Type.Literal("inactive")])),
    model: Type.Optional(Type.Unknown()),
  },
  strict,
);
export const Resource = Type.Object({
  facility: Type.String(),
  id: Type.String(),
  kind: Type.String(),
  alloc: Type.Array(Type.String()),
  props: Type.Record(Type.String(), Type.Unknown()),
  /** Something is allocated on it; `state` says whether room is left. */
  allocated: Type.Boolean(),
  /** free: nothing on it; shared: virtual machines, room left; full: no core or no memory left; whole: one node on the bare metal. */
  state: Type.Union([Type.Literal("free"), Type.Literal("shared"), Type.Literal("full"), Type.Literal("whole")]),
  cores: Type.Object({ used: Type.Number(), total: Type.Number() }),
  /** Bytes. */
  memory: Type.Object({ used: Type.Number(), total: Type.Number() }),
  /** The holders you may see (administrators, members of the holding project). */
  holders: Type.Array(Type.Object({ realization: Type.String(), project: Type.String(), user: Type.String() })),
  /** Holders in projects you may not see: counted, not named. */
  otherHolders: Type.Integer(),
});
export const Usage = Type.Object({
  byProject: Type.Record(Type.String(), Type.Object({ resources: Type.Integer(), realizations: Type.Integer() })),
  byUser: Type.Record(Type.String(), Type.Object({ resources: Type.Integer(), realizations: Type.Integer() })),
});

export const Health = Type.Object({
  status: Type.Literal("ok"),
  store: Type.String(),
  revision: Type.Integer(),
  facilities: Type.Integer(),
});

/** Standard error responses, so the OpenAPI document lists them. */
export const errors = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  /** Too many failed credential checks from this address or for this account (throttle.ts); see Retry-After. */
  429: ErrorBody,
};

const PoolResource = Type.String({
  pattern: "^[a-z][a-z0-9]{0,31}/([A-Za-z0-9][A-Za-z0-9_.-]{0,127}|\\*)$",
  description: "facility/resource, or facility/* for all of a facility's nodes",
});
export const Pool = Type.Object({
  name: Type.String(),
  description: Type.String(),
  projects: Type.Array(Type.String()),
  resources: Type.Array(Type.String()),
  created: Time,
  updated: Time,
});
export const NewPool = Type.Object(
  {
    name: Name("pool name"),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    projects: Type.Array(Name("project"), { maxItems: 10000 }),
    resources: Type.Array(PoolResource, { maxItems: 100000 }),
  },
  strict,
);
export const PoolUpdate = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    projects: Type.Optional(Type.Array(Name("project"), { maxItems: 10000 })),
    resources: Type.Optional(Type.Array(PoolResource, { maxItems: 100000 })),
  },
  strict,
);
