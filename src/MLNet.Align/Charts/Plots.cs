using System.Diagnostics;
using System.Text.Json;


namespace MLNet.Align.Charts;

/// <summary>
/// PNG charts for reports: heatmaps (CKA grid, confusion matrix), grouped bars (method x metric) and line charts
/// (training curves), rendered by ScottPlot 5 in a separate program, <c>plots/mlnet-align-plots.dll</c>, copied
/// beside the CLI and test outputs. It runs out of process because ScottPlot 5.1.59 needs SkiaSharp 3.119 while ML.NET
/// ImageAnalytics 5.0.1 only works with SkiaSharp 2.88 (one libSkiaSharp.so per folder). Override its location with
/// the environment variable <c>MLNET_ALIGN_PLOTTER</c>. Files are written atomically; folders are created.
/// </summary>
internal static class Plots
{
    /// <summary>Path of the renderer, or null when it is not installed beside the application.</summary>
    public static string? RendererPath
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("MLNET_ALIGN_PLOTTER");
            if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? env : null;
            var p = Path.Combine(AppContext.BaseDirectory, "plots", "mlnet-align-plots.dll");
            return File.Exists(p) ? p : null;
        }
    }

    /// <summary>True when charts can be rendered here.</summary>
    public static bool Available => RendererPath != null;

    /// <summary>A heatmap of <paramref name="values"/> [rows, cols] with each cell's value printed in it.</summary>
    /// <param name="path">Output .png path.</param>
    /// <param name="values">Cell values; NaN cells are left blank.</param>
    /// <param name="rowLabels">Row labels [rows] (left axis, top to bottom).</param>
    /// <param name="columnLabels">Column labels [cols] (bottom axis).</param>
    /// <param name="title">Chart title.</param>
    /// <param name="format">Cell text format (e.g. "0.000", "0").</param>
    /// <param name="width">Pixels; 0 = sized to the grid.</param>
    /// <param name="height">Pixels; 0 = sized to the grid.</param>
    /// <exception cref="ArgumentException">Label counts do not match the grid.</exception>
    /// <exception cref="InvalidOperationException">The renderer is missing or failed (its error output is included).</exception>
    public static void Heatmap(string path, double[,] values, IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels,
        string title, string format = "0.000", int width = 0, int height = 0)
    {
        int rows = values.GetLength(0), cols = values.GetLength(1);
        if (rowLabels.Count != rows || columnLabels.Count != cols)
            throw new ArgumentException($"Grid is [{rows}, {cols}] but got {rowLabels.Count} row and {columnLabels.Count} column labels.");
        var grid = new double?[rows][];
        for (int r = 0; r < rows; r++)
        {
            grid[r] = new double?[cols];
            for (int c = 0; c < cols; c++) grid[r][c] = double.IsFinite(values[r, c]) ? values[r, c] : null;
        }
        Render(new PlotSpec { Kind = "heatmap", Path = path, Title = title, Width = width, Height = height, Values = grid,
            RowLabels = rowLabels.ToArray(), ColumnLabels = columnLabels.ToArray(), Format = format });
    }

    /// <summary>Grouped bars: one group per metric, one bar per method (e.g. methods x {i2t R@1, ..., t2i R@10}).</summary>
    /// <param name="path">Output .png path.</param>
    /// <param name="methods">Series names [m] (legend).</param>
    /// <param name="groups">Group labels [g] (x axis).</param>
    /// <param name="values">values[method][group].</param>
    /// <param name="title">Chart title.</param>
    /// <param name="yLabel">Y axis label.</param>
    /// <param name="width">Pixels; 0 = sized to the groups.</param>
    /// <param name="height">Pixels.</param>
    /// <param name="percent">Values are fractions in [0, 1]: axis and value labels in percent.</param>
    /// <param name="valueLabels">Print each bar's value above it.</param>
    /// <param name="subtitle">Second title line (what is measured, chance level); "" = none.</param>
    /// <exception cref="ArgumentException">values is not [methods][groups].</exception>
    public static void GroupedBars(string path, IReadOnlyList<string> methods, IReadOnlyList<string> groups, IReadOnlyList<IReadOnlyList<double>> values,
        string title, string yLabel = "", int width = 0, int height = 480, bool percent = false, bool valueLabels = false, string subtitle = "")
    {
        if (values.Count != methods.Count || values.Any(v => v.Count != groups.Count))
            throw new ArgumentException($"values must be [{methods.Count} methods][{groups.Count} groups].");
        Render(new PlotSpec { Kind = "bars", Path = path, Title = title, YLabel = yLabel, Width = width, Height = height, Percent = percent, ValueLabels = valueLabels,
            Subtitle = subtitle, Series = methods.ToArray(), Groups = groups.ToArray(), SeriesValues = values.Select(v => v.ToArray()).ToArray() });
    }

    /// <summary>A contact sheet: each image with its text lines underneath (e.g. truth and top-3 scores), framed green
    /// or red when the item says whether it was right.</summary>
    /// <param name="path">Output .png path.</param>
    /// <param name="items">Images (existing files any of PNG, JPEG, WebP, GIF, BMP) and their lines.</param>
    /// <param name="title">Title line.</param>
    /// <param name="subtitle">Second line; "" = none.</param>
    /// <param name="columns">Images per row; 0 = up to 6.</param>
    /// <exception cref="ArgumentException">No items, or an image path that does not exist (named).</exception>
    /// <exception cref="InvalidOperationException">The renderer is missing or failed (e.g. an undecodable image).</exception>
    public static void ContactSheet(string path, IReadOnlyList<ContactItem> items, string title, string subtitle = "", int columns = 0)
    {
        if (items.Count == 0) throw new ArgumentException("A contact sheet needs at least one image.", nameof(items));
        foreach (var i in items)
            if (!File.Exists(i.Path)) throw new ArgumentException($"Contact sheet image '{i.Path}' does not exist.", nameof(items));
        Render(new PlotSpec { Kind = "contact", Path = path, Title = title, Subtitle = subtitle, Columns = columns,
            Items = items.Select(i => new ContactItem { Path = Path.GetFullPath(i.Path), Lines = i.Lines, Correct = i.Correct }).ToArray() });
    }

    /// <summary>Line chart of named series (x, y), e.g. loss curves.</summary>
    /// <exception cref="ArgumentException">A series' x and y lengths differ.</exception>
    public static void Lines(string path, IReadOnlyDictionary<string, (double[] X, double[] Y)> series, string title, string xLabel, string yLabel,
        bool logY = false, int width = 800, int height = 480)
    {
        foreach (var (name, (x, y)) in series)
            if (x.Length != y.Length) throw new ArgumentException($"Series '{name}' has {x.Length} x values and {y.Length} y values.");
        Render(new PlotSpec { Kind = "lines", Path = path, Title = title, XLabel = xLabel, YLabel = yLabel, LogY = logY, Width = width, Height = height,
            Lines = series.Select(kv => new LineSeries { Name = kv.Key, X = kv.Value.X, Y = kv.Value.Y }).ToArray() });
    }

    /// <summary>Renders several charts in one renderer run (one process start).</summary>
    public static void Render(params PlotSpec[] specs)
    {
        var renderer = RendererPath ?? throw new InvalidOperationException(
            "The chart renderer plots/mlnet-align-plots.dll is not beside this application (" + AppContext.BaseDirectory +
            "). Build a project that sets IncludeAlignPlotter=true (the CLI does) or set MLNET_ALIGN_PLOTTER to its path.");
        foreach (var s in specs)
        {
            ArgumentException.ThrowIfNullOrEmpty(s.Path);
            s.Path = Path.GetFullPath(s.Path);
        }
        var specFile = Path.Combine(Path.GetTempPath(), $"mlnet-align-plots-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(specFile, JsonSerializer.Serialize(specs));
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            psi.ArgumentList.Add(renderer);
            psi.ArgumentList.Add(specFile);
            using var p = Process.Start(psi) ?? throw new InvalidOperationException("Could not start 'dotnet' to render charts.");
            var stderr = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
                throw new InvalidOperationException($"Chart renderer failed (exit {p.ExitCode}) for {string.Join(", ", specs.Select(s => s.Path))}: {stderr.Result}");
        }
        finally
        {
            File.Delete(specFile);
        }
    }
}
