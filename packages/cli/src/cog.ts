// cog: the command line of facility operators (the program: cog-program.ts).
import { cogProgram } from "./cog-program.ts";

const program = await cogProgram();
await program.parseAsync(process.argv);
