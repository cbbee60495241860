import { type CatalogCode, MergeError } from "@merge/xir/errors";

/** A failure: exit status 1. */
export class CliError extends MergeError<"cli"> {
  constructor(message: string, options?: ErrorOptions & { code?: CatalogCode<"cli"> }) {
    super("cli", options?.code ?? "failed", message, options);
  }
}

/** The command line itself is wrong (a malformed name, a bad flag value): exit status 2. */
export class UsageError extends CliError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, { ...options, code: "usage" });
  }
}
