using System.CommandLine;
using System.Reflection;
using MLNet.Align.Terminal;

// mlnet-align-bench: the benchmark suites, one ICliCommand per file as in the tool (bench, bench-pool).
// dotnet run --project bench/MLNet.Align.Bench -c Release -- bench --pairs FILE [--suites encode,text,train,store,serve]
CliProgress.ConfigureConsole();
var root = new RootCommand("mlnet-align-bench: speed of MLNet.Align's pieces against peers measured in the same run (docs/performance.md).");
foreach (var type in Assembly.GetExecutingAssembly().GetTypes()
             .Where(t => typeof(ICliCommand).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
             .OrderBy(t => t.Name, StringComparer.Ordinal))
    root.Subcommands.Add(((ICliCommand)Activator.CreateInstance(type)!).Build());
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) });
