using System.Text.Json;
using MLNet.Align.Cli.Reports;
using ScottPlot;

// Usage: mlnet-align-plots SPEC.json  (a JSON array of PlotSpec). Exit 0 when every chart was written.
if (args.Length != 1 || !File.Exists(args[0]))
{
    Console.Error.WriteLine("usage: mlnet-align-plots SPEC.json (a JSON array of chart specs)");
    return 2;
}
var specs = JsonSerializer.Deserialize<PlotSpec[]>(File.ReadAllText(args[0]), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })
            ?? throw new InvalidDataException($"{args[0]}: empty spec");
foreach (var spec in specs)
{
    var plot = spec.Kind switch
    {
        "heatmap" => Charts.Heatmap(spec),
        "bars" => Charts.GroupedBars(spec),
        "lines" => Charts.Lines(spec),
        _ => throw new InvalidDataException($"{args[0]}: unknown chart kind '{spec.Kind}' (heatmap | bars | lines)"),
    };
    Charts.Save(plot, spec);
}
return 0;

internal static class Charts
{
    public static Plot Heatmap(PlotSpec s)
    {
        var values = s.Values ?? throw new InvalidDataException($"{s.Path}: heatmap without values");
        int rows = values.Length, cols = rows == 0 ? 0 : values[0].Length;
        var rowLabels = s.RowLabels ?? []; var columnLabels = s.ColumnLabels ?? [];
        var plot = new Plot();
        // Cells drawn as rectangles (ScottPlot's Heatmap plottable left single-column grids blank); row 0 on top;
        // values printed in the cells, so no colour bar.
        var colormap = new ScottPlot.Colormaps.Viridis();
        var finite = values.SelectMany(r => r).Where(v => v.HasValue && double.IsFinite(v.Value)).Select(v => v!.Value).DefaultIfEmpty(0).ToArray();
        double max = finite.Max(), min = finite.Min();
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                if (values[r][c] is not double v || !double.IsFinite(v)) continue;
                double t = max > min ? (v - min) / (max - min) : 0.5;
                double yc = rows - 1 - r;
                var rect = plot.Add.Rectangle(c - 0.5, c + 0.5, yc - 0.5, yc + 0.5);
                rect.FillColor = colormap.GetColor(t);
                rect.LineWidth = 0;
                var text = plot.Add.Text(v.ToString(s.Format, System.Globalization.CultureInfo.InvariantCulture), c, yc);
                text.LabelAlignment = Alignment.MiddleCenter;
                text.LabelFontSize = Math.Clamp(220f / Math.Max(rows, cols), 8f, 16f);
                text.LabelFontColor = t > 0.6 ? Colors.Black : Colors.White;
            }
        plot.Grid.IsVisible = false;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, cols).Select(c => (double)c).ToArray(), columnLabels);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, rows).Select(r => (double)(rows - 1 - r)).ToArray(), rowLabels);
        if (cols > 6)
        {
            plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
            plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        }
        plot.Axes.SetLimits(-0.5, cols - 0.5, -0.5, rows - 0.5);
        plot.Title(s.Title);
        if (s.XLabel.Length > 0) plot.XLabel(s.XLabel);
        if (s.YLabel.Length > 0) plot.YLabel(s.YLabel);
        int labelWidth = 8 * rowLabels.DefaultIfEmpty("").Max(l => l.Length);
        if (s.Width <= 0) s.Width = Math.Max(Math.Max(480, 9 * s.Title.Length + 40), 80 + labelWidth + 90 * cols);
        if (s.Height <= 0) s.Height = Math.Max(360, 120 + 50 * rows + (cols > 6 ? 80 : 0));
        return plot;
    }

    public static Plot GroupedBars(PlotSpec s)
    {
        var series = s.Series ?? []; var groups = s.Groups ?? []; var values = s.SeriesValues ?? [];
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int m = series.Length;
        double barWidth = 0.8 / Math.Max(1, m);
        for (int k = 0; k < m; k++)
        {
            var bars = new List<Bar>();
            for (int g = 0; g < groups.Length; g++)
                bars.Add(new Bar { Position = g + (k - (m - 1) / 2.0) * barWidth, Value = values[k][g], Size = barWidth * 0.95, FillColor = palette.GetColor(k), LineWidth = 0 });
            plot.Add.Bars(bars).LegendText = series[k];
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, groups.Length).Select(g => (double)g).ToArray(), groups);
        plot.Axes.Margins(bottom: 0);
        plot.ShowLegend(Alignment.UpperRight);
        plot.Title(s.Title);
        plot.YLabel(s.YLabel);
        if (s.Width <= 0) s.Width = Math.Max(640, 90 * groups.Length * Math.Max(1, m) / 2 + 200);
        if (s.Height <= 0) s.Height = 480;
        return plot;
    }

    public static Plot Lines(PlotSpec s)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        foreach (var line in s.Lines ?? [])
        {
            var ys = s.LogY ? line.Y.Select(v => Math.Log10(Math.Max(v, 1e-12))).ToArray() : line.Y;
            var sc = plot.Add.Scatter(line.X, ys, palette.GetColor(i++));
            sc.LegendText = line.Name;
            sc.MarkerSize = line.X.Length > 50 ? 0 : 4;
            sc.LineWidth = 2;
            if (line.RightAxis) sc.Axes.YAxis = plot.Axes.Right;
        }
        if (s.Y2Label.Length > 0) plot.Axes.Right.Label.Text = s.Y2Label;
        if (s.LogY)
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                LabelFormatter = v => Math.Pow(10, v).ToString("G3", System.Globalization.CultureInfo.InvariantCulture),
            };
        if ((s.Lines?.Length ?? 0) > 1) plot.ShowLegend(Alignment.UpperRight);
        plot.Title(s.Title);
        plot.XLabel(s.XLabel);
        plot.YLabel(s.LogY ? s.YLabel + " (log)" : s.YLabel);
        if (s.Width <= 0) s.Width = 800;
        if (s.Height <= 0) s.Height = 480;
        return plot;
    }

    public static void Save(Plot plot, PlotSpec s)
    {
        var full = System.IO.Path.GetFullPath(s.Path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        var bytes = plot.GetImageBytes(s.Width, s.Height, ImageFormat.Png);
        var tmp = full + $".{Environment.ProcessId}.tmp";
        try
        {
            File.WriteAllBytes(tmp, bytes);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}
