using System.CommandLine;
using System.Reflection;
using MLNet.Align.Cli;
using MLNet.Align.Terminal;

// Commands are discovered from every ICliCommand in this assembly, so each lives in its own file under Commands/.
// Logs (output redirected to a file) get wide Spectre tables instead of the 80-column default that wraps names.
CliProgress.ConfigureConsole();
var root = new RootCommand("mlnet-align: align frozen image and text encoders (Freeze-Align, CVPR 2025) for zero-shot classification and retrieval in ML.NET.");
foreach (var type in typeof(Program).Assembly.GetTypes()
             .Where(t => typeof(ICliCommand).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
             .OrderBy(t => t.Name, StringComparer.Ordinal))
{
    var command = ((ICliCommand)Activator.CreateInstance(type)!).Build();
    root.Subcommands.Add(command);
}
// Ctrl+C / SIGINT cancels the token of the running command, which stops between batches, keeps what is complete and
// says how to resume; 30 s (System.CommandLine's default is 2 s, less than one batch on a busy machine) before the
// process is ended anyway. Commands run their work on their own task so that this wait applies.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) });
