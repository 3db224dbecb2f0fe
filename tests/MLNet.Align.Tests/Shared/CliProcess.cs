using System.Diagnostics;
using System.Text.Json;

namespace MLNet.Align.Tests.Shared;

/// <summary>Runs the built `mlnet-align` tool (beside the test assembly) as a real child process.</summary>
internal static class CliProcess
{
    /// <summary>A start info for <c>dotnet mlnet-align.dll ARGS</c> with redirected output.</summary>
    public static ProcessStartInfo StartInfo(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mlnet-align.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>As <see cref="StartInfo"/>, with SIGINT reset to its default handling in the child (coreutils'
    /// <c>env --default-signal=INT</c>): a test run started in the background by a non-interactive shell hands its children
    /// SIGINT ignored (POSIX), .NET keeps an inherited ignore, and a Ctrl+C test would then see the command run to the end.</summary>
    public static ProcessStartInfo StartInfoWithDefaultSigint(params string[] args)
    {
        var psi = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("--default-signal=INT");
        psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mlnet-align.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>`predict --model ZIP --json --top 8 IMAGES` in a fresh process; asserts exit 0 and returns its JSON.</summary>
    public static JsonDocument PredictJson(string zip, IEnumerable<string> images)
    {
        using var proc = Process.Start(StartInfo(["predict", "--model", zip, "--json", "--top", "8", .. images]))!;
        var stderr = proc.StandardError.ReadToEndAsync();
        var stdout = proc.StandardOutput.ReadToEnd();
        proc.WaitForExit();
        Assert.True(proc.ExitCode == 0, $"predict failed ({proc.ExitCode}): {stderr.Result}\n{stdout}");
        return JsonDocument.Parse(stdout);
    }
}
