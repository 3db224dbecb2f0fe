using System.CommandLine;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Shared;

/// <summary>Runs commands in process with the console captured (tests of the "cli-console" collection, which never run
/// beside each other), echoing what was printed to the test output.</summary>
internal static class CliConsole
{
    public static (int Code, string Out, string Error) Run(RootCommand root, ITestOutputHelper output, string[] args)
    {
        var (oldOut, oldError) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o); Console.SetError(e);
        try { return (root.Parse(args).Invoke(), o.ToString(), e.ToString()); }
        finally
        {
            Console.SetOut(oldOut); Console.SetError(oldError);
            output.WriteLine(o.ToString() + e.ToString());
        }
    }
}
